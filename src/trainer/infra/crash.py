"""How a command ends when it cannot finish: an unforeseen error is one line that names a log file
holding its traceback (exit 1), SIGTERM unwinds like Ctrl-C, and a progress bar the error cut off is
closed first, so that the error starts a line of its own.

>>> signal_exit_code(2)
130
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

EXIT_BUG = 1
# Folder under the system's temporary folder that holds one traceback log per unforeseen error.
CRASH_FOLDER = "trainer-crashes"


def signal_exit_code(signum: int) -> int:
    """The shell's exit code for a command stopped by signal `signum`: 128 plus its number."""
    return 128 + signum


EXIT_INTERRUPTED = signal_exit_code(signal.SIGINT)  # Ctrl-C: 130


def crash_log(exc: BaseException, argv: list[str], version: str) -> Path:
    """Write the traceback of an unforeseen error to a log file; return its path."""
    folder = Path(tempfile.gettempdir()) / CRASH_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with path.open("w", encoding="utf-8", errors="backslashreplace") as out:
        out.write(f"trainer {version}, python {sys.version.split()[0]}\ncommand: trainer {' '.join(argv)}\n\n")
        traceback.print_exception(exc, file=out)
    return path


def bug_message(exc: BaseException, argv: list[str], version: str) -> str:
    """The one line shown for an unforeseen error, naming the log of its traceback."""
    lines = str(exc).strip().splitlines()
    summary = f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
    try:
        where = f"the traceback is in {crash_log(exc, argv, version)}"
    except OSError as log_error:
        where = f"its traceback could not be saved ({log_error.strerror})"
    return f"error: unexpected {summary}; this is a bug in trainer, please report it ({where})"


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
