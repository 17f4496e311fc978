"""Pure metric functions over label names, in the fixed label order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from trainer.labels import LABELS


def compute_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label precision/recall/F1/support and the confusion matrix.

    >>> m = compute_metrics(["verified", "attributed"], ["verified", "verified"])
    >>> round(m["accuracy"], 2), m["per_label"]["attributed"]["recall"]
    (0.5, 0.0)
    """
    labels = list(LABELS)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, predicted)) if len(gold) else 0.0,
        "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        "per_label": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(gold, predicted, labels=labels).tolist(),
    }


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Macro-F1 over the three labels."""
    return float(f1_score(gold, predicted, labels=list(LABELS), average="macro", zero_division=0))


def flat_metrics(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """`{prefix}_macro_f1`, `{prefix}_{label}_f1`, ... as one flat dict of floats (for tracking)."""
    flat = {f"{prefix}_accuracy": metrics["accuracy"], f"{prefix}_macro_f1": metrics["macro_f1"]}
    for label, values in metrics["per_label"].items():
        for name in ("precision", "recall", "f1"):
            flat[f"{prefix}_{label}_{name}"] = values[name]
    return flat


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of per-label precision/recall/F1/support and the summary figures."""
    lines = [f"{'label':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, v in metrics["per_label"].items():
        lines.append(f"{label:<12}{v['precision']:>10.3f}{v['recall']:>10.3f}{v['f1']:>10.3f}{v['support']:>10d}")
    lines.append(f"{'macro-F1':<12}{metrics['macro_f1']:>30.3f}{metrics['n']:>10d}")
    lines.append(f"{'accuracy':<12}{metrics['accuracy']:>30.3f}")
    matrix = np.asarray(metrics["confusion_matrix"])
    lines.append("")
    lines.append("confusion (rows gold, columns predicted): " + " ".join(f"{label[:5]:>6}" for label in LABELS))
    for label, row in zip(LABELS, matrix):
        lines.append(f"{label:>42} " + " ".join(f"{int(x):>6}" for x in row))
    return "\n".join(lines)
