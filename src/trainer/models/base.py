"""The one interface every model backend implements.

`fit(texts, labels) -> self`, `predict_proba(texts)` with columns in `LABELS` order, `save(dir)`,
`load(dir, meta, precision)`, and `from_config(model, training)` for a fresh, untrained one.
Nothing downstream branches on which backend it holds. Backends that train in steps (the
transformer) also offer `training_loop(texts, labels, validation)`: an iterator of events
(`models/loop.py`) that `train()` drives for checkpoints, early stopping and tracking; the others
train in one `fit` and do not pretend to have epochs. What that loop needs of the model it trains
is `Trainable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

    from trainer.config import TrainingConfig


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


class Trainable(Protocol):
    """What the training loop (`models/loop.py`) trains: a torch module, the device and precision it
    runs in, its training settings, and the steps from texts to logits."""

    model: torch.nn.Module
    device: torch.device
    precision: str  # "bf16", "fp16" (the loop then scales the loss) or "fp32"
    training: TrainingConfig

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, cut at the model's length."""
        ...

    def collate(self, ids: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """One batch of token ids as the model's inputs, padded, on `device`."""
        ...

    def forward(self, inputs: dict[str, torch.Tensor], module: torch.nn.Module | None = None) -> torch.Tensor:
        """Logits of `module` (default `model`; in training, its distributed wrapper) in `precision`."""
        ...

    def predict_labels(self, texts: Sequence[str]) -> list[str]: ...


@runtime_checkable
class SteppedBackend(Protocol):
    """A backend that trains in steps and epochs, and exposes its loop."""

    def training_loop(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        validation: tuple[Sequence[str], Sequence[str]] | None = None,
        targets: np.ndarray | None = None,
    ) -> Any: ...


class ReadsWholeText:
    """Mixin for backends without a length limit: no text is ever truncated."""

    def predict_proba_and_truncated(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[bool]]:
        return self.predict_proba(texts, batch_size), [False] * len(texts)  # type: ignore[attr-defined]
