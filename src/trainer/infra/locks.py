"""One writer at a time: a lock file per output in progress, and the short lock under which outputs are swapped.

    models/.locks/<run>.lock              held by the `trainer train` writing models/<run> (PID inside)
    <output_dir>/.locks/<dataset>.lock    held by the build writing that dataset

The locks are `flock` locks, held by the kernel for the life of the process: a killed process
(SIGKILL included) releases its lock, so a lock file left behind never blocks the next run.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with output_lock(folder / "run", "run 'run'", "train of it"):
...     (folder / ".locks" / "run.lock").read_text().split()[0] == str(os.getpid())
True
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trainer.errors import TrainerError

log = logging.getLogger(__name__)


class BusyError(TrainerError):
    """Another process is writing the same output."""


LOCKS_DIR = ".locks"


def lock_path(target: Path) -> Path:
    """The lock file of an output: `.locks/NAME.lock` beside it (one hidden folder, whatever the number of outputs).

    Keyed on the real path: a link to the output (or to a folder above it) shares the output's lock."""
    real = target.resolve()
    return real.parent / LOCKS_DIR / f"{real.name}.lock"


@contextmanager
def output_lock(target: Path, what: str, command: str, wait: bool = False) -> Iterator[None]:
    """Hold the lock of `target` for the block. If another process holds it: with `wait`, wait for
    it; else raise BusyError at once, naming its PID.

    `what` names the output in the message ("run 'minilm'"), `command` what holds it ("trainer train").
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").split()
            pid = f"PID {holder[0]}" if holder else "another process"
            if not wait:
                raise BusyError(
                    f"{what}: expected no other {command} in progress, found one ({pid}, lock {path}); "
                    "wait for it to finish, or choose another name"
                ) from None
            log.info("%s: waiting for the %s in progress (%s)", what, command, pid)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock; the file stays (removing it would race with a new holder)


@contextmanager
def swap_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (a directory) for a few renames: waits for other holders.

    Outputs are renamed into place under it, so a process that checks "is this still the folder I
    read?" and then writes into it cannot interleave with a process replacing that folder.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def process_started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None where that is unknown.

    With its PID, this names one process: a PID reused by a later process has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22; the command name in parentheses may hold spaces


def alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` runs (and, given its start time, is still the same process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return started is None or process_started(pid) in (None, started)
