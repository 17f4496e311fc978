"""Model backends behind one interface (see `base.Backend`), found through the backend registry."""

from __future__ import annotations

from pathlib import Path

from trainer.config import ExperimentConfig
from trainer.errors import ModelLoadError
from trainer.model_folder import read_meta
from trainer.models.base import Backend
from trainer.registry import BACKENDS


def create_backend(config: ExperimentConfig) -> Backend:
    """A fresh, untrained backend for the experiment's `model` section."""
    return BACKENDS.get(config.model.backend).cls().from_config(config.model, config.training)


def load_backend(directory: str | Path, precision: str = "auto") -> Backend:
    """Load a saved model folder, whichever backend wrote it.

    `precision` (auto, bf16, fp16 or fp32) applies to transformer models; the others have one precision.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: expected a model folder, found nothing there (check the path)")
    meta = read_meta(directory)
    backend = meta.get("backend")
    if backend not in BACKENDS:
        raise ModelLoadError(f"{directory}: expected backend {', '.join(map(repr, BACKENDS.names()))}, found {backend!r}")
    return BACKENDS.get(backend).cls().load(directory, meta, precision=precision)
