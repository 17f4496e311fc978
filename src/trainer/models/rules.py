"""The cue-lexicon rules as a backend: `fit` is a no-op, `predict_proba` puts the rule's label first.

Trained, evaluated and used for prediction through the same commands as the other backends, so the
rule baseline sits in the same tables.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from trainer.data.rules import RuleLabeler, rules_path
from trainer.labels import LABEL2ID, LABELS
from trainer.config import RulesModel, TrainingConfig
from trainer.outputs.model_folder import write_meta
from trainer.models.base import ReadsWholeText

RULES_FILE = "rules.yaml"
# Rules give no graded confidence: the fired label gets this probability, the others share the rest.
_RULE_CONFIDENCE = 0.9


class RulesBackend(ReadsWholeText):
    """Labels by the lexicons in a YAML file; the file is copied into the model folder."""

    name: ClassVar[str] = "rules"
    labels = LABELS

    def __init__(self, config: RulesModel | None = None, path: Path | None = None):
        self.path = path or rules_path((config or RulesModel()).rules)
        self.labeler = RuleLabeler.from_yaml(self.path)

    @classmethod
    def from_config(cls, model: RulesModel, training: TrainingConfig) -> RulesBackend:
        return cls(model)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> RulesBackend:
        return self  # nothing to learn: the lexicon is the model

    def predict_proba(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        out = np.full((len(texts), len(LABELS)), (1 - _RULE_CONFIDENCE) / (len(LABELS) - 1))
        for row, text in enumerate(texts):
            out[row, LABEL2ID[self.labeler.label(text).label]] = _RULE_CONFIDENCE
        return out

    def save(self, directory: Path) -> None:
        shutil.copyfile(self.path, directory / RULES_FILE)
        write_meta(directory, self.name)

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any], precision: str = "auto") -> RulesBackend:
        return cls(path=directory / RULES_FILE)
