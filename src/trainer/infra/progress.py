"""Progress for long loops: a tqdm bar on a terminal, periodic log lines anywhere else, nothing with -q.

A bar redraws itself with carriage returns, which in a log file (`make train > log`, a batch job)
become tens of kilobytes of unreadable lines. Without a terminal the same loop logs one plain line
every `LOG_EVERY_S` seconds, and one at the end.

>>> for _ in bar(range(3), desc="demo", unit="item"):  # doctest: +SKIP
...     pass
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger("trainer.infra.progress")

# Seconds between two progress lines in a log (the environment's TRAINER_PROGRESS_EVERY_S wins).
LOG_EVERY_S = 30.0
_enabled = True


def configure(enabled: bool) -> None:
    """`trainer -q` turns every progress display off, the libraries' included."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether progress is shown at all (False under -q)."""
    return _enabled


def bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
        disable: bool = False, **tqdm_options: Any) -> Any:
    """A tqdm bar when stderr is a terminal, else a `LogProgress` with the same calls (update, close, ...)."""
    if disable or not _enabled:
        return LogProgress(iterable, total=total, desc=desc, unit=unit, silent=True)
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, **tqdm_options)
    every = float(os.environ.get("TRAINER_PROGRESS_EVERY_S", LOG_EVERY_S))
    return LogProgress(iterable, total=total, desc=desc, unit=unit, every_s=every,
                       initial=tqdm_options.get("initial", 0))


class LogProgress:
    """The subset of tqdm's interface the project uses, as log lines at most every `every_s` seconds."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", every_s: float = LOG_EVERY_S, silent: bool = False, initial: int = 0):
        self.iterable = iterable
        self.total = total if total is not None else _length(iterable)
        self.desc, self.unit, self.every_s, self.silent = desc, unit, every_s, silent
        self.n = self.initial = initial
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._closed = False
        self._emitted: tuple[int, str] | None = None  # the count and postfix the last line gave

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update()
        self.close()

    def __enter__(self) -> LogProgress:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.silent and now - self._last >= self.every_s:
            self._last = now
            self._emit(now)

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """What the next line adds after the counts, as tqdm shows it beside the bar (`sentences=1,200`)."""
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def refresh(self) -> None:
        """After `n` was set directly (as on a tqdm bar): a line if one is due."""
        self.update(0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A loop that ends within one interval logs nothing: its result line says enough; nor does one whose
        # last line already gave the final count and postfix.
        due = time.monotonic() - self._start >= self.every_s
        if not self.silent and due and (self.n, self.postfix) != self._emitted:
            self._emit(time.monotonic())

    def _emit(self, now: float) -> None:
        self._emitted = (self.n, self.postfix)
        elapsed = now - self._start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0  # done by this run: a resume starts later
        units = _plural(self.unit)
        done = f"{self.n:,}/{self.total:,} {units} ({self.n / self.total:.0%})" if self.total else f"{self.n:,} {units}"
        left = ""
        if self.total and rate > 0 and self.n < self.total:
            left = f", about {_duration((self.total - self.n) / rate)} left"
        log.info("%s: %s in %s, %s %s/s%s%s", self.desc or "progress", done, _duration(elapsed), f"{rate:.3g}", units,
                 left, f" ({self.postfix})" if self.postfix else "")


def _plural(unit: str) -> str:
    """`batch` -> `batches`, `article` -> `articles`."""
    return f"{unit}es" if unit.endswith(("ch", "s", "sh", "x")) else f"{unit}s"


def _length(iterable: Iterable[Any] | None) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _duration(seconds: float) -> str:
    """`75` -> `1m15s`; `8` -> `8s`."""
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
