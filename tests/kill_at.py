"""Run the `trainer` command and send this process a signal at a known point: right after the
N-th call of a named function returns. The kill tests use it instead of sleeping and hoping.

    python tests/kill_at.py trainer.models.checkpoint:Checkpointer.save 4 SIGKILL train --config c.yaml
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
from collections.abc import Callable


def after_call(target: str, calls: int, action: Callable[[], None]) -> None:
    """Patch `module:Owner.attribute` so that `action` runs right after its `calls`-th call returns."""
    module_name, _, path = target.partition(":")
    *owners, attribute = path.split(".")
    owner = importlib.import_module(module_name)
    for part in owners:
        owner = getattr(owner, part)
    original = getattr(owner, attribute)
    count = 0

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        nonlocal count
        result = original(*args, **kwargs)
        count += 1
        if count == calls:
            action()
        return result

    setattr(owner, attribute, wrapped)


def run_trainer(command: list[str]) -> int:
    from trainer.cli import main as trainer_main

    return trainer_main(["-q", *command])


def main() -> int:
    target, calls, name, *command = sys.argv[1:]
    if name == "SIGINT":
        # as from a terminal: a shell starts background jobs (`make test &`) with SIGINT ignored, and
        # Python then leaves it ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
    after_call(target, int(calls), lambda: os.kill(os.getpid(), getattr(signal, name)))
    return run_trainer(command)


if __name__ == "__main__":
    sys.exit(main())
