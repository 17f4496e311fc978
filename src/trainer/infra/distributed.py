"""Data-parallel training through torch's own launcher: `torchrun --nproc_per_node=N -m trainer.cli train ...`.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; this module reads them, starts the process group
(gloo on CPU, nccl on GPUs) and answers "which rank am I". Without torchrun everything here is a
no-op and training runs in one process.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    return world_size() > 1


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Only rank 0 logs to MLflow, writes the model folder and prints."""
    return rank() == 0


def setup() -> None:
    """Join the process group torchrun describes (once)."""
    if not is_distributed() or torch.distributed.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend)


def device_for_rank(default: torch.device) -> torch.device:
    if is_distributed() and default.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return default


def barrier() -> None:
    if is_distributed() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def sum_across_ranks(*values: float) -> list[float]:
    """Sum scalars over all ranks (e.g. loss sums and example counts for the epoch's mean loss)."""
    if not (is_distributed() and torch.distributed.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor.tolist()


def wrap(model: Any) -> Any:
    """DistributedDataParallel around the model when running under torchrun."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [model.device.index] if model.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def shard(batch: Any) -> Any:
    """This rank's share of a global batch: every WORLD_SIZE-th example starting at RANK."""
    return batch[rank() :: world_size()] if is_distributed() else batch
