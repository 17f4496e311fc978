"""TF-IDF + logistic regression baseline.

Saved with skops, which loads only the types it is told to trust, so a shared model folder cannot
run code through pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from trainer.config import DEFAULT_SEED, SklearnModel, TrainingConfig
from trainer.errors import DataError, ModelLoadError
from trainer.labels import LABEL2ID, LABELS
from trainer.outputs.model_folder import write_meta
from trainer.models.base import ReadsWholeText

PIPELINE_FILE = "pipeline.skops"


class SklearnBackend(ReadsWholeText):
    """TF-IDF word n-grams into a class-weighted logistic regression."""

    name: ClassVar[str] = "sklearn"
    labels = LABELS

    def __init__(self, config: SklearnModel | None = None, seed: int = DEFAULT_SEED,
                 pipeline: Pipeline | None = None):
        config = config or SklearnModel()
        self.pipeline = pipeline or Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(
                        ngram_range=(1, config.ngram_max), min_df=config.min_df, sublinear_tf=True, lowercase=True
                    ),
                ),
                (
                    "clf",
                    LogisticRegression(C=config.C, class_weight=config.class_weight, max_iter=2000, random_state=seed),
                ),
            ]
        )

    @classmethod
    def from_config(cls, model: SklearnModel, training: TrainingConfig) -> SklearnBackend:
        return cls(model, seed=training.seed)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> SklearnBackend:
        seen = sorted(set(labels), key=LABELS.index)
        if len(seen) < 2:
            raise DataError(
                f"expected sentences of at least two labels to train the TF-IDF baseline, found "
                f"{'only ' + repr(seen[0]) if seen else 'none'} in {len(labels)} training sentences; add data with "
                "other labels (trainer check-data shows each split's labels)"
            )
        self.pipeline.fit(list(texts), [LABEL2ID[label] for label in labels])
        return self

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        raw = self.pipeline.predict_proba(list(texts))
        # Columns follow the classes seen in training; place them in LABELS order.
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float64)
        out[:, self.pipeline.classes_] = raw
        return out

    def save(self, directory: Path) -> None:
        sio.dump(self.pipeline, directory / PIPELINE_FILE)
        write_meta(directory, self.name)

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], precision: str = "auto") -> SklearnBackend:
        path = directory / PIPELINE_FILE
        if not path.is_file():
            raise ModelLoadError(f"{directory}: expected {PIPELINE_FILE}, found none")
        untrusted = sio.get_untrusted_types(file=path)
        if untrusted:
            raise ModelLoadError(
                f"{path}: refusing to load types that are not plain scikit-learn/numpy ({untrusted}); "
                "this folder was not written by trainer"
            )
        return cls(pipeline=sio.load(path, trusted=[]))
