"""Prediction on a GPU at the speed of its model step: tokenising in worker processes, overlapped with it.

On an H200 the MiniLM step alone labels 56,000 sentences a second; tokenising in the same process
caps the whole at 17,000 (issue 27). Here a `torch.utils.data.DataLoader` tokenises blocks of texts
in `workers` processes, each block cut into length-sorted token-budget batches and padded there;
the loader pins them (page-locked memory) and the copies to the GPU are non-blocking, so the next
batch travels while the current one computes. Probabilities stay on the GPU until the end: one
copy back, no wait for the device after every batch.

The same code runs on the CPU (no pinning, `workers=0` in-process), which is how the tests check it.

>>> blocks = TokenizedBlocks(["Shares rose.", "The minister said so."], tokenizer, 128, 4096, 2)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from trainer.labels import LABELS
from trainer.models.batching import encode, pad, sorted_batches

# Texts tokenised per worker task: enough to sort into well-filled batches, small enough that the first
# batch reaches the GPU at once.
BLOCK_TEXTS = 4096
# Padded tokens per GPU batch: large batches keep the GPU busy; length-sorting keeps padding low.
GPU_TOKEN_BUDGET = 65_536
# Below this many texts worker processes cost more to start than they save.
MIN_TEXTS_FOR_WORKERS = 2 * BLOCK_TEXTS
# Blocks each worker tokenises ahead of the model.
PREFETCH_BLOCKS = 4


class TokenizedBlocks(torch.utils.data.Dataset):
    """Block `i` of `texts`, tokenised: its batches as (indices into texts, input_ids, attention_mask), and
    which texts were cut. Runs in a DataLoader worker."""

    def __init__(self, texts: Sequence[str], tokenizer: Any, max_length: int, token_budget: int,
                 block: int = BLOCK_TEXTS, context: bool = False):
        self.texts, self.tokenizer, self.max_length = texts, tokenizer, max_length
        self.token_budget, self.block, self.context = token_budget, block, context

    def __len__(self) -> int:
        return -(-len(self.texts) // self.block)

    def __getitem__(self, i: int) -> dict[str, Any]:
        start = i * self.block
        texts = self.texts[start:start + self.block]
        ids, cut = encode(self.tokenizer, texts, self.max_length, self.context)
        pad_id = self.tokenizer.pad_token_id or 0
        batches = []
        for batch in sorted_batches(ids, len(ids), self.token_budget):
            input_ids, mask = pad([ids[j] for j in batch], pad_id)
            batches.append((torch.from_numpy(batch + start), torch.from_numpy(input_ids), torch.from_numpy(mask)))
        return {"batches": batches, "start": start, "cut": torch.tensor(cut, dtype=torch.bool)}


def worker_init(_: int) -> None:
    """Set up a tokenising worker process."""
    # One tokenising thread per worker process: the workers are the parallelism.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    torch.set_num_threads(1)


def default_workers() -> int:
    """Worker processes to tokenise in: the cores this process may use, less one for the main process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(cores - 1, 0)


def stream_probabilities(
    texts: Sequence[str], tokenizer: Any, max_length: int, device: torch.device,
    logits_of: Callable[[dict[str, torch.Tensor]], torch.Tensor], token_budget: int = GPU_TOKEN_BUDGET,
    workers: int | None = None, block: int = BLOCK_TEXTS, context: bool = False,
) -> tuple[np.ndarray, list[bool]]:
    """Softmax of `logits_of` over every text, rows in input order, columns in LABELS order, and which texts
    were cut at `max_length`; tokenised in `workers` processes (default: the free cores) while the model runs.
    With `context`, each text is read with its neighbours (`batching.encode_pairs`)."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, len(LABELS)), dtype=np.float32), []
    workers = default_workers() if workers is None else workers
    if len(texts) < max(MIN_TEXTS_FOR_WORKERS, 2 * block):
        workers = 0
    cuda = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        TokenizedBlocks(texts, tokenizer, max_length, token_budget, block, context), batch_size=None, num_workers=workers,
        pin_memory=cuda, worker_init_fn=worker_init if workers else None,
        prefetch_factor=PREFETCH_BLOCKS if workers else None,
    )
    out = torch.empty((len(texts), len(LABELS)), dtype=torch.float32, device=device)
    cut = torch.zeros(len(texts), dtype=torch.bool)
    for block in loader:
        for index, input_ids, mask in block["batches"]:
            inputs = {"input_ids": input_ids.to(device, non_blocking=cuda),
                      "attention_mask": mask.to(device, non_blocking=cuda)}
            logits = logits_of(inputs).float()
            out[index.to(device, non_blocking=cuda)] = torch.softmax(logits, dim=1)
        cut[block["start"]:block["start"] + len(block["cut"])] = block["cut"]
    return out.cpu().numpy(), cut.tolist()
