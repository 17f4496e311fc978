"""Tokenising once and running length-sorted, minimally padded batches: shared by the torch and ONNX backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import ModelLoadError
from trainer.infra import threads
from trainer.labels import LABELS

# Fewer tokens than this is not a real vocabulary: transformers builds a near-empty tokenizer from
# config.json alone when a folder's tokenizer files are gone, and every word becomes [UNK].
MIN_VOCABULARY = 1000

# (input_ids, attention_mask) -> logits, all as arrays; one per runtime.
LogitsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def encode(tokenizer: Any, texts: Sequence[str], max_length: int, context: bool = False,
           ) -> tuple[list[list[int]], list[bool]]:
    """Token ids cut at `max_length`, and which texts were cut, from one tokeniser pass. With `context`, each
    text is read with its neighbours (`encode_pairs`)."""
    if not len(texts):
        return [], []
    if context:
        return encode_pairs(tokenizer, texts, max_length)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    if encoded.encodings is not None:  # fast tokenisers keep what truncation dropped
        return encoded["input_ids"], [bool(e.overflowing) for e in encoded.encodings]
    full = tokenizer(list(texts), truncation=False)["input_ids"]
    return encoded["input_ids"], [len(ids) > max_length for ids in full]


def context_segment(text: str, separator: str) -> str:
    """The second segment of a sentence read in context: 'previous <separator> next'. A side with no sentence
    (an article's edge, or a bare sentence: a plain `str` has no neighbours) is empty, and the separator's place
    tells which side is which.

    >>> from trainer.data.sentences import InContext
    >>> context_segment(InContext("B.", before="A."), "[SEP]"), context_segment("B.", "[SEP]")
    ('A. [SEP]', '[SEP]')
    """
    return f"{getattr(text, 'before', '')} {separator} {getattr(text, 'after', '')}".strip()


def encode_pairs(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], list[bool]]:
    """Each text as the tokenizer's pair (the sentence; `context_segment`), cut at `max_length` in the
    context only (`truncation="only_second"`): the sentence is read whole. A sentence that leaves no room
    for a token of context is read alone, cut like a bare one. Cut means the sentence was cut."""
    sentences = [str(text) for text in texts]  # the sentence alone, without its neighbours
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    lengths = [len(ids) for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"]]
    paired = [i for i, n in enumerate(lengths) if n < room]
    alone = [i for i, n in enumerate(lengths) if n >= room]
    ids: list[list[int]] = [[] for _ in sentences]
    cut = [False] * len(sentences)
    if paired:
        separator = tokenizer.sep_token or ""
        encoded = tokenizer([sentences[i] for i in paired], [context_segment(texts[i], separator) for i in paired],
                            truncation="only_second", max_length=max_length)
        for i, row in zip(paired, encoded["input_ids"]):
            ids[i] = row
    if alone:
        rows, cuts = encode(tokenizer, [sentences[i] for i in alone], max_length)
        for i, row, was_cut in zip(alone, rows, cuts):
            ids[i], cut[i] = row, was_cut
    return ids, cut


def load_tokenizer(directory: Path, vocab_size: int | None = None) -> Any:
    """A model folder's tokenizer (never its code), refused when its vocabulary is missing or does not
    fit the model's embeddings (`vocab_size`)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    size = len(tokenizer)
    if size < MIN_VOCABULARY or (vocab_size is not None and not vocab_size // 2 <= size <= vocab_size):
        expected = f"between {vocab_size // 2:,} and {vocab_size:,}" if vocab_size else f"at least {MIN_VOCABULARY:,}"
        raise ModelLoadError(
            f"{directory}: expected a tokenizer vocabulary of {expected} tokens, found {size:,} (are tokenizer.json "
            "and tokenizer_config.json missing?); copy the folder again or train it again"
        )
    return tokenizer


def pad(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) as int64 arrays, padded only to the longest row."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = x
        mask[row, : len(x)] = 1
    return input_ids, mask


def sorted_batches(
    ids: Sequence[Sequence[int]], batch_size: int, token_budget: int | None = None
) -> Iterator[np.ndarray]:
    """Indices into `ids`, in batches of similar length (shortest first); callers scatter results back.

    With `token_budget`, a batch holds as many sentences as fit in that many padded tokens (at least one),
    instead of `batch_size`: more short sentences per product, fewer long ones."""
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(lengths, kind="stable")
    start = 0
    while start < len(order):
        size = batch_size if token_budget is None else max(1, token_budget // int(lengths[order[start]]))
        # sorted ascending: the batch's last row is its longest; shrink until it fits the budget
        while token_budget is not None and size > 1 and size * _longest(lengths, order, start, size) > token_budget:
            size -= 1
        yield order[start : start + size]
        start += size


def _longest(lengths: np.ndarray, order: np.ndarray, start: int, size: int) -> int:
    return int(lengths[order[min(start + size, len(order)) - 1]])


def probabilities(ids: Sequence[Sequence[int]], batch_size: int, pad_id: int, logits_of: LogitsFn,
                  token_budget: int | None = None) -> np.ndarray:
    """Softmax of `logits_of` over length-sorted batches, rows back in input order, columns in LABELS order.

    Batches run as `threads.run_batches` says: the free cores re-checked before each, and on cores
    shared with other work several at once, each on one thread (`logits_of` must allow that)."""
    out = np.zeros((len(ids), len(LABELS)), dtype=np.float32)

    def softmax(batch: np.ndarray) -> None:
        logits = logits_of(*pad([ids[i] for i in batch], pad_id)).astype(np.float32)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        out[batch] = exp / exp.sum(axis=1, keepdims=True)

    threads.run_batches(softmax, sorted_batches(ids, batch_size, token_budget))
    return out


def batched_rows(
    ids: Sequence[Sequence[int]], batch_size: int, pad_id: int, rows_of: LogitsFn, width: int
) -> np.ndarray:
    """`rows_of` (one `width`-wide row per text) over length-sorted batches, rows back in input order."""
    out = np.zeros((len(ids), width), dtype=np.float32)

    def rows(batch: np.ndarray) -> None:
        out[batch] = rows_of(*pad([ids[i] for i in batch], pad_id))

    threads.run_batches(rows, sorted_batches(ids, batch_size))
    return out
