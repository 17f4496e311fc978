"""Model backends behind one interface (see `base.Backend`)."""

from __future__ import annotations

from pathlib import Path

from trainer.config import ExperimentConfig, RulesModel, SklearnModel
from trainer.errors import ModelLoadError
from trainer.models.base import Backend, read_meta


def create_backend(config: ExperimentConfig) -> Backend:
    """A fresh, untrained backend for the experiment's `model` section."""
    if isinstance(config.model, RulesModel):
        from trainer.models.rules import RulesBackend

        return RulesBackend(config.model)
    if isinstance(config.model, SklearnModel):
        from trainer.models.sklearn import SklearnBackend

        return SklearnBackend(config.model, seed=config.training.seed)
    from trainer.models.transformer import TransformerBackend

    return TransformerBackend(config.model, config.training)


def load_backend(directory: str | Path, precision: str = "auto") -> Backend:
    """Load a saved model folder, whichever backend wrote it.

    `precision` (auto, bf16, fp16 or fp32) applies to transformer models; the others have one precision.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: expected a model folder, found nothing there (check the path)")
    meta = read_meta(directory)
    backend = meta.get("backend")
    if backend == "sklearn":
        from trainer.models.sklearn import SklearnBackend

        return SklearnBackend.load(directory, meta)
    if backend == "rules":
        from trainer.models.rules import RulesBackend

        return RulesBackend.load(directory, meta)
    if backend == "transformer":
        from trainer.models.transformer import TransformerBackend

        return TransformerBackend.load(directory, meta, precision=precision)
    if backend == "onnx":
        from trainer.models.onnx import OnnxBackend

        return OnnxBackend.load(directory, meta)
    raise ModelLoadError(
        f"{directory}: expected backend 'transformer', 'sklearn', 'rules' or 'onnx', found {backend!r}"
    )
