"""Training checkpoints for `trainer train --resume`: a run killed mid-epoch continues where it was.

A checkpoint is a hidden folder beside the model folder (`models/.<run>.checkpoint/`), rewritten
atomically every `training.checkpoint_every_steps` steps and at each epoch end. It holds the weights
(safetensors), the best weights so far, and the loop state (optimizer, schedule, random generators,
position in the epoch, MLflow run id) saved with `torch.save` of tensors and plain values only,
and read back with `weights_only=True`, so loading one never unpickles arbitrary objects.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from trainer.atomic import atomic_folder

WEIGHTS = "model.safetensors"
BEST = "best.safetensors"
STATE = "state.pt"


def checkpoint_dir(model_dir: Path) -> Path:
    return model_dir.parent / f".{model_dir.name}.checkpoint"


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


class Checkpointer:
    """Saves and restores one run's training state."""

    def __init__(self, directory: Path, every_steps: int, meta: dict[str, Any] | None = None):
        self.directory = directory
        self.every_steps = every_steps
        self.meta = meta or {}

    def exists(self) -> bool:
        return (self.directory / STATE).is_file()

    def save(
        self,
        model: torch.nn.Module,
        best_state: dict[str, torch.Tensor] | None,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        loop: dict[str, Any],
    ) -> None:
        with atomic_folder(self.directory) as tmp:
            save_file(_contiguous(model.state_dict()), str(tmp / WEIGHTS))
            if best_state is not None:
                save_file(_contiguous(best_state), str(tmp / BEST))
            state = {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "loop": loop,
                "meta": self.meta,
            }
            torch.save(state, tmp / STATE)

    def load(self) -> dict[str, Any]:
        """Weights, best weights (or None) and the loop state, as saved."""
        state = torch.load(self.directory / STATE, weights_only=True)
        state["weights"] = load_file(str(self.directory / WEIGHTS))
        best = self.directory / BEST
        state["best"] = load_file(str(best)) if best.is_file() else None
        return state

    def read_meta(self) -> dict[str, Any]:
        return torch.load(self.directory / STATE, weights_only=True)["meta"]

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
