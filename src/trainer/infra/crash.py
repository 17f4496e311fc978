"""How a command ends when it cannot finish: an unforeseen error is one line that names a log file
holding its traceback (exit 1), SIGTERM unwinds like Ctrl-C, and a progress bar the error cut off is
closed first, so that the error starts a line of its own.

>>> signal_exit_code(2)
130
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from trainer.infra.secrets import mask_secrets

EXIT_BUG = 1
# Folder under the system's temporary folder that holds one traceback log per unforeseen error; one per
# user (`trainer-crashes-UID`, mode 0700), as tracebacks can hold paths and text of the data.
CRASH_FOLDER = "trainer-crashes"
# Disk faults that are the machine's state, not a bug: one line, exit 2.
DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
               errno.EROFS: "the file system is read-only",
               errno.EFBIG: "a file over the size limit (ulimit -f, or the file system's largest file)"}


def signal_exit_code(signum: int) -> int:
    """The shell's exit code for a command stopped by signal `signum`: 128 plus its number."""
    return 128 + signum


EXIT_INTERRUPTED = signal_exit_code(signal.SIGINT)  # Ctrl-C: 130


def crash_folder() -> Path:
    """This user's crash-log folder: created 0700, and refused if it is a link or another user's."""
    folder = Path(tempfile.gettempdir()) / f"{CRASH_FOLDER}-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(errno.EPERM, f"{folder} is a link, another user's, or open to others")
    return folder


def crash_log(exc: BaseException, argv: list[str], version: str) -> Path:
    """Write the traceback of an unforeseen error to a new file only this user can read; return its path.

    The log names the command and its options, not their values (which can hold passwords and paths).
    """
    path = crash_folder() / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    options = [a.split("=")[0] for a in argv[1:] if a.startswith("-")]
    command = " ".join(["trainer", *argv[:1], *options])
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
        out.write(f"trainer {version}, python {sys.version.split()[0]}\ncommand: {command}\n\n")
        out.write(mask_secrets("".join(traceback.format_exception(exc))))
    return path


def bug_message(exc: BaseException, argv: list[str], version: str) -> str:
    """The one line shown for an unforeseen error, naming the log of its traceback."""
    lines = mask_secrets(str(exc)).strip().splitlines()
    summary = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
    try:
        where = f"the traceback is in {crash_log(exc, argv, version)}"
    except OSError as log_error:
        where = f"its traceback could not be saved ({log_error.strerror})"
    return f"error: unexpected {summary}; this is a bug in trainer, please report it ({where})"


def disk_message(exc: OSError) -> str | None:
    """The one line for a write the disk refused (full, over quota, read-only, a name too long for it), or
    None for other errors."""
    if exc.errno == errno.ENAMETOOLONG:
        name = max(os.fsdecode(exc.filename or "").split(os.sep), key=len)
        found = f"one of {len(os.fsencode(name)):,} ({name[:40]}...)" if name else "a longer one"
        return f"expected file names of at most 255 bytes, found {found}; choose a shorter path or name"
    found = DISK_ERRORS.get(exc.errno or 0)
    if found is None:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    return (f"expected room to write the command's output, found {found}{where}; free space or choose another "
            "output folder (nothing was half-written: outputs are renamed into place only when whole)")


def close_progress_bars() -> None:
    """End a progress bar the error interrupted, so that the error starts a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def _exit_on_signal(signum: int, frame: object) -> None:
    # SystemExit unwinds the `with` blocks: temporary folders are removed, the MLflow run is closed.
    raise SystemExit(signal_exit_code(signum))


def stop_on_sigterm() -> None:
    """SIGTERM ends the run as Ctrl-C does, cleaning up on the way (only the main thread can ask)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_signal)
