"""Training checkpoints for `trainer train --resume`: a run killed mid-epoch continues where it was.

A checkpoint is a hidden folder beside the model folder (`models/.<run>.checkpoint/`), rewritten
atomically every `training.checkpoint_every_steps` steps and at each epoch end. It holds the weights
(safetensors), the best weights so far, and the loop state (optimizer, schedule, random generators
of the CPU and of every GPU, position in the epoch, MLflow run id) saved with `torch.save` of tensors and plain values only,
and read back with `weights_only=True`, so loading one never unpickles arbitrary objects.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from trainer.infra.atomic import atomic_folder
from trainer.outputs.model_folder import WEIGHTS_FILE

BEST = "best.safetensors"
STATE = "state.pt"
# Settings that a resumed run may change without changing its result (where it logs, how often it
# saves, how wide evaluation batches are); every other setting must match the checkpoint's.
RESULT_NEUTRAL = ("tracking.", "output_dir", "data.output_dir", "data.num_proc", "data.min_examples_per_label",
                  "training.checkpoint_every_steps", "training.eval_batch_size")


def checkpoint_dir(model_dir: Path) -> Path:
    return model_dir.parent / f".{model_dir.name}.checkpoint"


def setting_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Settings (flattened, e.g. `training.batch_size`) that change the result and differ, as
    `key VALUE (checkpoint: VALUE)`.

    >>> setting_differences({"training": {"batch_size": 8, "checkpoint_every_steps": 5}},
    ...                     {"training": {"batch_size": 16, "checkpoint_every_steps": 50}})
    ['training.batch_size 16 (checkpoint: 8)']
    """
    from trainer.outputs.tracking import flatten

    before, now = flatten(saved), flatten(current)
    return [
        f"{key} {now.get(key, '(unset)')} (checkpoint: {before.get(key, '(unset)')})"
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key) and not key.startswith(RESULT_NEUTRAL)
    ]


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

    def save(self, state: dict[str, Any]) -> None:
        """Write a training loop's `state_dict()`: the weights as safetensors, the rest as plain tensors."""
        with atomic_folder(self.directory) as tmp:
            save_file(_contiguous(state["weights"]), str(tmp / WEIGHTS_FILE))
            if state["best"] is not None:
                save_file(_contiguous(state["best"]), str(tmp / BEST))
            rest = {k: v for k, v in state.items() if k not in ("weights", "best")}
            torch.save({**rest, "meta": self.meta}, tmp / STATE)

    def load(self) -> dict[str, Any]:
        """The state as saved: weights, best weights (or None), optimiser, schedule, random generators, loop."""
        state = torch.load(self.directory / STATE, weights_only=True)
        state["weights"] = load_file(str(self.directory / WEIGHTS_FILE))
        best = self.directory / BEST
        state["best"] = load_file(str(best)) if best.is_file() else None
        return state

    def read_meta(self) -> dict[str, Any]:
        return torch.load(self.directory / STATE, weights_only=True)["meta"]

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
