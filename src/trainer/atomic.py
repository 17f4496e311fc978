"""Output folders and files written whole or not at all.

Datasets, model folders, exports and checkpoints are written into a hidden sibling
(`.NAME.tmp-PID`) and renamed into place only when complete, so a run killed at any point leaves
the previous output or none, never one that loads wrongly. Single files (cards, manifests, Parquet
parts, plots) go the same way through `atomic_file`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def remove_stale_siblings(target: Path) -> None:
    """Remove `.NAME.tmp-PID` / `.NAME.old-PID` folders left by runs that were killed (their PID is gone)."""
    for stale in target.parent.glob(f".{target.name}.*-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own leftovers from an earlier attempt in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `target`; on success it replaces `target`.

    If the block raises (SystemExit from SIGTERM included), the temporary folder is removed and
    `target` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


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
