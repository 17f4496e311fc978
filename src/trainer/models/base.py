"""The one interface every model backend implements.

`fit(texts, labels) -> self`, `predict_proba(texts)` with columns in `LABELS` order, `save(dir)`,
`load(dir, meta, precision)`, and `from_config(model, training)` for a fresh, untrained one.
Nothing downstream branches on which backend it holds. Backends that train in steps (the
transformer) also offer `training_loop(texts, labels, validation)`: an iterator of events
(`models/loop.py`) that `train()` drives for checkpoints, early stopping and tracking; the others
train in one `fit` and do not pretend to have epochs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


class Backend(Protocol):
    name: ClassVar[str]
    labels: tuple[str, ...]

    @classmethod
    def from_config(cls, model: Any, training: Any) -> Backend: ...

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Backend: ...

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...

    def predict_proba_and_truncated(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """`predict_proba`, and which texts are longer than the model reads (only their start is labeled)."""
        ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], precision: str = "auto") -> Backend: ...


@runtime_checkable
class SteppedBackend(Protocol):
    """A backend that trains in steps and epochs, and exposes its loop."""

    def training_loop(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        validation: tuple[Sequence[str], Sequence[str]] | None = None,
    ) -> Any: ...


class ReadsWholeText:
    """Mixin for backends without a length limit: no text is ever truncated."""

    def predict_proba_and_truncated(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        return self.predict_proba(texts, batch_size), [False] * len(texts)  # type: ignore[attr-defined]
