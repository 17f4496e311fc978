"""Run the `trainer` command and hold it at a known point: right after the N-th call of a named
function returns, it prints `paused` on stderr and waits for a line on stdin. The concurrency
tests start a second command while the first is held there, with no sleeps.

    python tests/pause_at.py trainer.workflows.train:build_dataset 1 train --config c.yaml
"""

from __future__ import annotations

import sys

try:
    from tests.kill_at import after_call, run_trainer
except ModuleNotFoundError:  # run as a script: tests/ is on the path, the repository root may not be
    from kill_at import after_call, run_trainer


def _pause() -> None:
    print("paused", file=sys.stderr, flush=True)
    sys.stdin.readline()


def main() -> int:
    target, calls, *command = sys.argv[1:]
    after_call(target, int(calls), _pause)
    return run_trainer(command)


if __name__ == "__main__":
    sys.exit(main())
