"""Output folders and files written whole or not at all.

Datasets, model folders, exports and checkpoints are written into a hidden sibling
(`.NAME.tmp-PID`) and renamed into place only when complete, so a run killed at any point leaves
the previous output or none, never one that loads wrongly. Single files (cards, manifests, Parquet
parts, plots) go the same way through `atomic_file`.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from trainer.infra.locks import alive, swap_lock

_RENAME_EXCHANGE = 2  # renameat2(2) flag: swap two paths in one step (Linux 3.15+, most file systems)
_AT_FDCWD = -100


def remove_stale_siblings(target: Path) -> None:
    """Clean up after runs that were killed (their PID is gone): remove their `.NAME.tmp-PID` folders,
    and put back a `.NAME.old-PID` (the previous output) if the kill came between the two renames of
    a swap and left no `NAME`."""
    for stale in sorted(target.parent.glob(f".{target.name}.*-*")):
        kind, _, pid = stale.name[len(target.name) + 2:].rpartition("-")
        if kind not in ("tmp", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == "old" and not target.exists():
            stale.rename(target)
        else:
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    # our own leftovers are from an earlier attempt in this process
    return pid != os.getpid() and alive(pid)


def check_replaceable(target: Path, own: Collection[str], option: str) -> None:
    """Refuse to replace `target` unless it is absent, empty, or holds only `own` files (an earlier output
    of the same command): an output never deletes a folder of someone else's files."""
    from trainer.errors import ConfigError

    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise ConfigError(f"{option}: expected a new folder or an earlier output of this command, found {target}, "
                          "which is a link or a file; choose another folder")
    others = sorted(os.fsencode(p.name).decode("utf-8", "backslashreplace") for p in target.iterdir()
                    if p.name not in own)
    if others:
        raise ConfigError(f"{option}: expected a new folder or an earlier output of this command, found {target} "
                          f"with other files ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); "
                          "choose another folder")


@contextmanager
def atomic_folder(
    target: Path, check: Callable[[], None] | None = None, lock: Path | None = None
) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; on success it replaces `target`.

    If the block raises (SystemExit from SIGTERM included), the temporary folder is removed and
    `target` is left as it was. The swap holds `swap_lock(lock or target.parent)`; under it,
    `check` may raise to refuse the swap (e.g. "the folder this report belongs to was replaced").
    The previous `target` is swapped out in one step where the file system can (`renameat2`), so
    a reader never finds the name missing; SIGINT and SIGTERM wait until the swap is done.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
        with swap_lock(lock or target.parent), _signals_held():
            if check is not None:
                check()
            previous = _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _swap(tmp: Path, target: Path) -> Path | None:
    """Put `tmp` at `target`; return where the previous `target` went (to be removed), if there was one."""
    if not target.exists():
        tmp.rename(target)
        return None
    if _exchange(tmp, target):
        return tmp
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    target.rename(old)  # a kill from here to the next line is repaired by remove_stale_siblings
    tmp.rename(target)
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with renameat2(RENAME_EXCHANGE); False where that is not available."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _signals_held() -> object:
    """SIGINT and SIGTERM deferred for the block (their handlers run after it), in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return nullcontext()
    return _blocked({signal.SIGINT, signal.SIGTERM})


@contextmanager
def _blocked(signals: set[signal.Signals]) -> Iterator[None]:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def atomic_file(path: Path, write: Callable[[Path], object]) -> None:
    """Write `path` whole or not at all: `write` fills a temporary sibling, which then replaces `path`
    (a reader, or another process writing the same file, never sees half of it).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "note.txt"
    >>> atomic_file(target, lambda tmp: tmp.write_text("whole"))
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('whole', ['note.txt'])
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
