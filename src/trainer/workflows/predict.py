"""The predict helper: load a saved model (folder or MLflow URI) and label sentences or articles.

>>> clf = load_classifier("models/minilm-bundled")  # doctest: +SKIP
>>> clf.predict(["The minister said the talks had failed."])[0].label  # doctest: +SKIP
'attributed'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np

from trainer.models.calibration import apply_temperature
from trainer.config import Precision
from trainer.data.cleaning import clean_article
from trainer.data.sentences import article_sentences, in_context
from trainer.errors import ConfigError, DataError
from trainer.labels import LABELS
from trainer.models import load_backend
from trainer.outputs.model_folder import load_calibration
from trainer.models.base import Backend

DEFAULT_BATCH_SIZE = 64
# Texts per `iter_predict` chunk for a command that shows progress: on the CPU a chunk of this many takes
# seconds, so the display moves; a GPU labels tens of thousands a second and needs large chunks to keep its
# tokenising workers and batches full (models/streaming.py).
PROGRESS_CHUNK = 1024
GPU_CHUNK = 65_536
MLFLOW_URI_PREFIXES = ("runs:/", "models:/")
PRECISIONS: tuple[str, ...] = get_args(Precision)  # the config's Literal: auto first


@dataclass(frozen=True)
class Prediction:
    """The label of one sentence and the probability of every label, in `LABELS` order."""

    text: str
    label: str
    probabilities: dict[str, float]
    truncated: bool = False  # the text was longer than the model reads; only its start was labeled

    @property
    def score(self) -> float:
        return self.probabilities[self.label]


class Classifier:
    """A loaded model with one API for every backend."""

    def __init__(self, backend: Backend, source: str, temperature: float = 1.0, bias: dict[str, float] | None = None):
        self.backend = backend
        self.source = source
        self.labels = LABELS
        self.temperature = temperature  # from temperature scaling; 1.0 leaves probabilities as they are
        self.bias = bias  # per-label offsets (training.class_bias); None leaves the decision as the model gives it

    def predict(self, texts: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> list[Prediction]:
        """One Prediction per input text, in input order. A single string is one text (one Prediction).

        Every text must be a string with a word in it: an empty or whitespace-only text has no label,
        and raises `DataError` naming its position, as does anything that is not a string. A model that
        reads context (`model.context`) reads a sentence's neighbours where the text carries them
        (`trainer.data.sentences.InContext`; `in_context(sentences)` for an article's), else none.

        >>> clf.predict("The minister said the talks had failed.")[0].label  # doctest: +SKIP
        'attributed'
        """
        texts = list(_texts(texts))
        return list(self.iter_predict(texts, batch_size=batch_size, chunk_size=max(len(texts), 1)))

    def iter_predict(
        self, texts: str | Iterable[str], batch_size: int = DEFAULT_BATCH_SIZE, chunk_size: int = 4096
    ) -> Iterator[Prediction]:
        """Stream predictions for any number of texts, holding one chunk in memory at a time.

        The same inputs as `predict`: an empty or whitespace-only text, or one that is not a string,
        raises `DataError` when the stream reaches it (the predictions before it are yielded).
        """
        chunk: list[str] = []
        for position, text in enumerate(_texts(texts)):
            check_text(text, f"input {position}")
            chunk.append(text)
            if len(chunk) >= chunk_size:
                yield from self._predict_chunk(chunk, batch_size)
                chunk = []
        if chunk:
            yield from self._predict_chunk(chunk, batch_size)

    def progress_chunk(self) -> int:
        """The chunk size for `iter_predict` in a command that shows progress (PROGRESS_CHUNK, or GPU_CHUNK)."""
        device = getattr(self.backend, "device", None)
        return GPU_CHUNK if getattr(device, "type", "cpu") == "cuda" else PROGRESS_CHUNK

    def _predict_chunk(self, texts: list[str], batch_size: int) -> Iterator[Prediction]:
        raw, truncated = self.backend.predict_proba_and_truncated(texts, batch_size=batch_size)
        bias = None if self.bias is None else np.array([self.bias[label] for label in LABELS])
        probabilities = apply_temperature(raw, self.temperature, bias)
        for text, row, cut in zip(texts, probabilities, truncated):
            best = int(row.argmax())
            yield Prediction(text, LABELS[best], {label: float(row[i]) for i, label in enumerate(LABELS)}, cut)

    def tag_article(self, text: str, batch_size: int = DEFAULT_BATCH_SIZE) -> list[Prediction]:
        """Clean a raw article (boilerplate out), split it into sentences and label each one (read with its
        neighbours by a model that reads context)."""
        return self.predict(in_context(article_sentences(clean_article(text).paragraphs)), batch_size=batch_size)


def _texts(texts: object) -> Iterable[str]:
    """The texts to label: one string is one text; anything else must be an iterable of them."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray, dict, set, frozenset)) or not isinstance(texts, Iterable):
        unordered = " (a set has no order to return predictions in)" if isinstance(texts, (set, frozenset)) else ""
        raise DataError(
            f"expected a list of strings (or one string) to label, found {type(texts).__name__} ({texts!r:.40})"
            f"{unordered}"
        )
    return texts


def check_text(text: object, where: str) -> None:
    """A text the models can label: a string with something other than whitespace in it, that is
    Unicode text (no lone surrogates, which no tokenizer encodes)."""
    if not isinstance(text, str):
        raise DataError(
            f"{where}: expected a string, found {type(text).__name__} ({text!r:.40}); pass text only"
        )
    if not text.strip():
        raise DataError(
            f"{where}: expected a sentence, found {'an empty string' if not text else 'only whitespace'}; "
            "an empty text has no label, leave it out"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: bytes that were not UTF-8, kept by surrogateescape
        raise DataError(
            f"{where}: expected text, found the lone surrogate {text[exc.start]!r} at {exc.start} (bytes that were "
            "not UTF-8?); decode the bytes with errors='replace'"
        ) from None


def load_classifier(model: str | Path, precision: str = "auto") -> Classifier:
    """Load a model folder (`models/<run>`) or an MLflow model URI (`runs:/<id>/model`, `models:/NAME@alias`).

    `precision`: `auto` runs transformer models in bf16 where the hardware does it natively (a GPU, or
    a CPU with AMX or AVX512-BF16), in fp16 on GPUs without bf16, and in fp32 elsewhere; `fp32` forces
    full precision, `bf16` and `fp16` force those.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: expected one of {', '.join(PRECISIONS)}, found {precision!r}")
    with local_model(model) as folder:
        return Classifier(load_backend(folder, precision), str(model), *load_calibration(folder))


def is_mlflow_uri(model: str | Path) -> bool:
    return str(model).startswith(MLFLOW_URI_PREFIXES)


def model_label(model: str | Path) -> str:
    """A short name for a model: the folder's name, or the MLflow URI made safe for a path."""
    return uri_label(str(model)) if is_mlflow_uri(model) else Path(model).name


def uri_label(uri: str) -> str:
    """`models:/sourcing@champion` -> `models-sourcing@champion`."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "-", uri).strip("-")


@contextmanager
def local_model(model: str | Path) -> Iterator[Path]:
    """The local folder of a model: the folder itself, or an MLflow URI downloaded once, for as long as
    the `with` block (one command) needs it."""
    if not is_mlflow_uri(model):
        yield Path(model)
        return
    from trainer.outputs.tracking import downloaded_model

    with downloaded_model(str(model)) as folder:
        yield folder
