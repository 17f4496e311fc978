"""Pure metric functions over label names, in the fixed label order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from trainer.errors import ConfigError
from trainer.labels import LABELS

# Bootstrap intervals: resamples per interval, and the seed that makes every report reproducible.
N_RESAMPLES = 1000
BOOTSTRAP_SEED = 13
# Fewer resamples than this give intervals from a handful of draws: refused rather than reported.
MIN_RESAMPLES = 10
# More resamples than this change an interval's third digit no more, and cost minutes of bootstrap and
# gigabytes of draws on a large test set: a larger --resamples is refused, not run without end.
MAX_RESAMPLES = 100_000


def check_resamples(n_resamples: int) -> None:
    """Refuse a bootstrap size that gives no interval (before any work is done).

    >>> check_resamples(0)
    Traceback (most recent call last):
    trainer.errors.ConfigError: --resamples: expected a whole number of at least 10 bootstrap resamples, found 0 (the default is 1000)
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < MIN_RESAMPLES:
        raise ConfigError(f"--resamples: expected a whole number of at least {MIN_RESAMPLES} bootstrap resamples, "
                          f"found {n_resamples!r} (the default is {N_RESAMPLES})")
    if n_resamples > MAX_RESAMPLES:
        raise ConfigError(f"--resamples: expected at most {MAX_RESAMPLES:,} bootstrap resamples, found "
                          f"{n_resamples:,} (the default is {N_RESAMPLES})")


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


def flat_intervals(ci: dict[str, Any], prefix: str) -> dict[str, float]:
    """Each interval's ends as two metrics, `{prefix}_{figure}_ci_low` and `_ci_high` (for tracking).

    >>> flat_intervals({"macro_f1": (0.81, 0.89)}, "eval")
    {'eval_macro_f1_ci_low': 0.81, 'eval_macro_f1_ci_high': 0.89}
    """
    flat = {}
    for figure, (low, high) in ci.items():
        flat[f"{prefix}_{figure}_ci_low"], flat[f"{prefix}_{figure}_ci_high"] = float(low), float(high)
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


# ---------------------------------------------------------------- uncertainty


def _group_index(groups: Sequence[str] | None, n: int) -> tuple[np.ndarray, int]:
    """Integer group id per example (each example its own group when there are no groups)."""
    if groups is None:
        return np.arange(n), n
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    return inverse, int(inverse.max()) + 1 if n else 0


def _resample(group_ids: np.ndarray, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one bootstrap sample drawn by group (article): whole articles in or out."""
    chosen = rng.integers(0, n_groups, n_groups)
    counts = np.bincount(chosen, minlength=n_groups)
    return np.repeat(np.arange(len(group_ids)), counts[group_ids])


def _f1s(gold: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-label F1 then macro-F1, from label ids (fast, for bootstrap loops)."""
    k = len(LABELS)
    matrix = np.bincount(gold * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(matrix).astype(float)
    denominator = matrix.sum(0) + matrix.sum(1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    return np.append(f1, f1.mean())


def _ids(labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(LABELS)}
    return np.array([index[label] for label in labels], dtype=np.int64)


def bootstrap_ci(
    gold: Sequence[str],
    predicted: Sequence[str],
    groups: Sequence[str] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for each label's F1 and macro-F1, resampling whole articles.

    >>> ci = bootstrap_ci(["verified"] * 20 + ["attributed"] * 20, ["verified"] * 20 + ["attributed"] * 20)
    >>> ci["macro_f1"]
    (0.6666666666666666, 0.6666666666666666)
    """
    g, p = _ids(gold), _ids(predicted)
    group_ids, n_groups = _group_index(groups, len(g))
    rng = np.random.default_rng(seed)
    samples = np.array([_f1s(g[idx], p[idx]) for idx in (_resample(group_ids, n_groups, rng) for _ in range(n_resamples))])
    low, high = np.percentile(samples, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=0)
    names = [f"{label}_f1" for label in LABELS] + ["macro_f1"]
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(names, low, high)}


def paired_bootstrap(
    gold: Sequence[str],
    predicted_a: Sequence[str],
    predicted_b: Sequence[str],
    groups: Sequence[str] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, float]:
    """Difference in macro-F1 (b - a) with a 95% interval and a two-sided bootstrap p-value.

    The same resampled articles score both models, so the test is paired.
    """
    g, a, b = _ids(gold), _ids(predicted_a), _ids(predicted_b)
    group_ids, n_groups = _group_index(groups, len(g))
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n_resamples):
        idx = _resample(group_ids, n_groups, rng)
        deltas.append(_f1s(g[idx], b[idx])[-1] - _f1s(g[idx], a[idx])[-1])
    deltas_arr = np.asarray(deltas)
    observed = float(_f1s(g, b)[-1] - _f1s(g, a)[-1])
    # two-sided: how often the resampled difference falls on the other side of zero
    p_value = float(min(1.0, 2 * min((deltas_arr <= 0).mean(), (deltas_arr >= 0).mean())))
    low, high = np.percentile(deltas_arr, [2.5, 97.5])
    return {"delta_macro_f1": observed, "ci_low": float(low), "ci_high": float(high), "p_value": p_value}


# ---------------------------------------------------------------- calibration


# A reliability bin with fewer sentences than this is marked as too small to read: its accuracy
# interval is wider than about +-0.2.
MIN_BIN_N = 20


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at small n and at 0 or 1).

    >>> [round(x, 3) for x in wilson(8, 10)]
    [0.49, 0.943]
    """
    if n == 0:
        return (0.0, 1.0)
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Expected calibration error and the per-bin accuracy/confidence of a reliability diagram.

    ECE = sum over equal-width confidence bins of (bin share) * |accuracy - mean confidence|.
    Each bin carries its count, a Wilson interval of its accuracy, and `too_few` below MIN_BIN_N.

    >>> round(reliability(np.array([0.8] * 10), np.array([1] * 8 + [0] * 2))["ece"], 6)
    0.0
    """
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        mask = which == b
        if not mask.any():
            bins.append({"low": edges[b], "high": edges[b + 1], "n": 0, "accuracy": None, "confidence": None,
                         "accuracy_ci": None, "too_few": True})
            continue
        accuracy, mean_confidence = float(correct[mask].mean()), float(confidence[mask].mean())
        ece += mask.mean() * abs(accuracy - mean_confidence)
        n = int(mask.sum())
        bins.append({"low": edges[b], "high": edges[b + 1], "n": n, "accuracy": accuracy, "confidence": mean_confidence,
                     "accuracy_ci": wilson(int(correct[mask].sum()), n), "too_few": n < MIN_BIN_N})
    return {"ece": float(ece), "bins": bins, "n": int(len(confidence)), "min_bin_n": MIN_BIN_N}


# ---------------------------------------------------------------- label shares (what a study counts)


def confusion_rates(matrix: Sequence[Sequence[int]]) -> np.ndarray:
    """rates[i, j] = P(predicted j | gold i) from a confusion matrix of counts (rows gold); a label
    never seen in the gold counts as always predicted right."""
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, counts / np.maximum(totals, 1), np.eye(len(counts)))


def adjusted_shares(predicted_ids: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Adjusted classify-and-count (Forman 2008): the gold label shares q whose expected predictions
    rates.T @ q best match the predicted shares, with q >= 0 and summing to 1 (non-negative least squares).

    >>> rates = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    >>> adjusted_shares(np.array([0] * 55 + [1] * 45), rates).round(3).tolist()
    [0.5, 0.5, 0.0]
    """
    return adjusted_from_counts(np.bincount(predicted_ids, minlength=len(LABELS)), rates)


def adjusted_from_counts(predicted_counts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """`adjusted_shares` from the number of sentences predicted as each label."""
    from scipy.optimize import nnls

    k = len(LABELS)
    observed = np.asarray(predicted_counts, dtype=float) / max(float(np.sum(predicted_counts)), 1.0)
    weight = 100.0  # the sum-to-one row, weighted so that it holds almost exactly
    system = np.vstack([rates.T, weight * np.ones(k)])
    solution, _ = nnls(system, np.append(observed, weight))
    return solution / solution.sum() if solution.sum() > 0 else observed


def share_intervals(
    predicted_ids: np.ndarray,
    groups: Sequence[str] | None,
    rates: np.ndarray | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> dict[str, Any]:
    """Raw (classify-and-count) and, with `rates`, adjusted label shares, each with a bootstrap
    interval over groups (articles)."""
    predicted_ids = np.asarray(predicted_ids, dtype=np.int64)
    group_ids, n_groups = _group_index(groups, len(predicted_ids))
    rng = np.random.default_rng(seed)
    k = len(LABELS)
    samples_raw, samples_adjusted = [], []
    for _ in range(n_resamples):
        idx = _resample(group_ids, n_groups, rng)
        samples_raw.append(np.bincount(predicted_ids[idx], minlength=k) / max(len(idx), 1))
        if rates is not None:
            samples_adjusted.append(adjusted_shares(predicted_ids[idx], rates))
    bounds = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def summary(point: np.ndarray, samples: list[np.ndarray]) -> dict[str, Any]:
        low, high = np.percentile(np.array(samples), bounds, axis=0)
        return {label: {"share": float(point[i]), "ci": (float(low[i]), float(high[i]))} for i, label in enumerate(LABELS)}

    out = {"raw": summary(np.bincount(predicted_ids, minlength=k) / max(len(predicted_ids), 1), samples_raw)}
    if rates is not None:
        out["adjusted"] = summary(adjusted_shares(predicted_ids, rates), samples_adjusted)
    return out
