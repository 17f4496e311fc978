"""The one interface every model backend implements, and the metadata file saved with each model.

`fit(texts, labels) -> self`, `predict_proba(texts)` with columns in `LABELS` order, `save(dir)`,
`load(dir)`. Nothing downstream branches on which backend it holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from trainer.errors import ModelLoadError
from trainer.labels import LABELS

MODEL_META = "trainer_model.json"

# Called after each epoch with (epoch, metrics); the training loop uses it for tracking.
EpochCallback = Callable[[int, dict[str, float]], None]


class Backend(Protocol):
    name: ClassVar[str]
    labels: tuple[str, ...]

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        validation: tuple[Sequence[str], Sequence[str]] | None = None,
        on_epoch: EpochCallback | None = None,
        checkpoint: Any = None,
    ) -> Backend: ...

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...

    def predict_proba_and_truncated(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        """`predict_proba`, and which texts are longer than the model reads (only their start is labeled)."""
        ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> Backend: ...


class ReadsWholeText:
    """Mixin for backends without a length limit: no text is ever truncated."""

    def predict_proba_and_truncated(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        return self.predict_proba(texts, batch_size), [False] * len(texts)  # type: ignore[attr-defined]


def write_meta(directory: Path, backend: str, **extra: Any) -> None:
    """Write the metadata that makes a model folder self-describing: backend and label order."""
    meta = {"backend": backend, "labels": list(LABELS), **extra}
    (directory / MODEL_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def read_meta(directory: Path) -> dict[str, Any]:
    """Read a model folder's metadata, with a ModelLoadError when it is not a model folder."""
    path = directory / MODEL_META
    if not path.is_file():
        raise ModelLoadError(
            f"{directory}: expected a model folder with {MODEL_META}, found none "
            "(pass a folder written by `trainer train`, e.g. models/<run-name>)"
        )
    meta = json.loads(path.read_text(encoding="utf-8"))
    if tuple(meta.get("labels", ())) != LABELS:
        raise ModelLoadError(
            f"{path}: expected labels {list(LABELS)}, found {meta.get('labels')}; this model uses another scheme"
        )
    return meta
