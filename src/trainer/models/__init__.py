"""Model backends behind one interface (see `base.Backend`), found through the backend registry."""

from __future__ import annotations

from pathlib import Path

from trainer.config import ExperimentConfig
from trainer.errors import ModelLoadError, TrainerError
from trainer.outputs.model_folder import read_meta, verify_manifest
from trainer.models.base import Backend
from trainer.registry import BACKENDS


def create_backend(config: ExperimentConfig) -> Backend:
    """A fresh, untrained backend for the experiment's `model` section."""
    return BACKENDS.get(config.model.backend).create(config.model, config.training)


def load_backend(directory: str | Path, precision: str = "auto") -> Backend:
    """Load a saved model folder, whichever backend wrote it.

    `precision` (auto, bf16, fp16 or fp32) applies to transformer models; the others have one precision.
    Its files are first checked against the folder's manifest; a folder that is damaged in a way the
    manifest cannot tell (an old folder without one) is still a one-line ModelLoadError.
    """
    directory = Path(directory)
    verify_manifest(directory)
    meta = read_meta(directory)
    backend = meta.get("backend")
    if backend not in BACKENDS:
        raise ModelLoadError(f"{directory}: expected backend {', '.join(map(repr, BACKENDS.names()))}, found {backend!r}")
    cls = BACKENDS.get(backend).cls()
    try:
        return cls.load(directory, meta, precision=precision)
    except (TrainerError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - the libraries' readers raise many kinds; each means a damaged folder
        lines = str(exc).strip().splitlines()
        raise ModelLoadError(
            f"{directory}: expected a {backend} model folder that loads, found it fails ({type(exc).__name__}"
            f"{': ' + lines[0][:200] if lines else ''}); the folder is damaged or not written by trainer: copy it "
            "again or train it again"
        ) from None
