"""Sentence sourcing classifier toolkit: label news sentences verified / attributed / unverified.

Public API (imported lazily, so that `import trainer` stays cheap):
load_config, build_dataset, train, evaluate, load_classifier, LABELS.
"""

from __future__ import annotations

from typing import Any

from trainer.labels import LABELS

__all__ = ["LABELS", "build_dataset", "evaluate", "load_classifier", "load_config", "train"]

_LAZY = {
    "load_config": "trainer.config",
    "build_dataset": "trainer.data.build",
    "train": "trainer.workflows.train",
    "evaluate": "trainer.workflows.evaluate",
    "load_classifier": "trainer.workflows.predict",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
