"""Run the `trainer` command and send this process a signal at a known point: right after the
N-th call of a named function returns. The kill tests use it instead of sleeping and hoping.

    python tests/kill_at.py trainer.checkpoint:Checkpointer.save 4 SIGKILL train --config c.yaml
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import sys


def main() -> int:
    target, calls, name, *command = sys.argv[1:]
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
        if count == int(calls):
            os.kill(os.getpid(), getattr(signal, name))
        return result

    setattr(owner, attribute, wrapped)
    from trainer.cli import main as trainer_main

    return trainer_main(["-q", *command])


if __name__ == "__main__":
    sys.exit(main())
