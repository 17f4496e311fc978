"""Label shares of a corpus with 95% intervals: the estimators a study can publish, each named.

- `ppi`: prediction-powered inference (Angelopoulos et al., Science 2023; PPI++ power tuning,
  arXiv:2311.01453) through the authors' package `ppi-python`: the model's probabilities over
  every sentence of the group, corrected by a random audit of hand-labeled sentences. Valid
  whatever the model's errors; narrower than the audit alone when the model is good.
- `hand`: the audit alone (Wilson score interval; Kish's effective size when the audit is weighted).
- `cc`: classify-and-count, the model's labels counted (bootstrap over articles). Valid only if
  the model makes no errors on this corpus.
- `acc`, `pacc`, `emq`: quantification with QuaPy, fitted on labeled real news: valid if the
  labels' share may change but each label's sentences look to the model as they do in that set
  (prior probability shift).

A stratified audit is weighted: each audited sentence counts 1 / its inclusion probability.

>>> import numpy as np
>>> y = np.array([1, 0, 0, 1, 0, 0, 0, 0]); p = np.array([.9, .1, .2, .7, .1, .1, .3, .1])
>>> e = hand_share(y)
>>> (e.estimator, e.share, e.n)
('hand', 0.25, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from trainer.labels import LABELS
from trainer.metrics import BOOTSTRAP_SEED, N_RESAMPLES, wilson

ALPHA = 0.05  # 95% intervals; ppi-python's own default is 0.1 (90%)
Z = 1.959964
ESTIMATORS = {
    "ppi": "prediction-powered inference (PPI++, ppi-python): model probabilities on every sentence, "
           "corrected by the hand-labeled audit",
    "hand": "hand-labeled audit only (Wilson interval)",
    "acc": "adjusted classify-and-count (QuaPy ACC)",
    "pacc": "probabilistic adjusted classify-and-count (QuaPy PACC)",
    "emq": "expectation maximisation (QuaPy EMQ/SLD)",
    "cc": "classify-and-count: the model's labels counted (assumes the model makes no errors here)",
}
# EMQ first: on PolNeAR, PACC and ACC fitted on the real-news labels put unverified at 0 (docs/tutorial.md)
QUANTIFIERS = ("emq", "pacc", "acc")
QUANTIFICATION_ASSUMPTION = (
    "prior probability shift: the labels' shares may differ from the labeled set's, but the sentences of each "
    "label look to the model as they do there (the same outlets' style, the same model errors per label)"
)


@dataclass
class Estimate:
    """One label's share in one group by one estimator, with its 95% interval and the audited sentences used."""

    estimator: str
    share: float
    low: float
    high: float
    n: int  # audited sentences behind it (0 for estimators without an audit)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bounds(low: float, high: float, floor: float, ceiling: float) -> tuple[float, float]:
    return float(min(max(low, floor), ceiling)), float(max(min(high, ceiling), floor))


def hand_share(y: np.ndarray, weights: np.ndarray | None = None, floor: float = 0.0) -> Estimate:
    """The audit's share of a label (`y` is 1 where the hand label is it), with a Wilson interval.

    Weighted (a stratified audit): the weighted share, and Wilson at Kish's effective sample size."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n == 0:
        return Estimate("hand", float("nan"), 0.0, 1.0, 0)
    if weights is None:
        share = float(y.mean())
        low, high = wilson(int(y.sum()), n, Z)
    else:
        w = np.asarray(weights, dtype=float)
        share = float((w * y).sum() / w.sum())
        effective = float(w.sum() ** 2 / (w**2).sum())
        low, high = wilson(share * effective, effective, Z)  # type: ignore[arg-type]
    low, high = _bounds(low, high, floor, 1.0)
    return Estimate("hand", max(share, floor), low, high, n)


def ppi_share(
    y: np.ndarray, yhat: np.ndarray, yhat_all: np.ndarray, weights: np.ndarray | None = None, floor: float = 0.0,
    ceiling: float = 1.0,
) -> Estimate:
    """PPI++ share of a label: `y` the audit's hand labels (0/1), `yhat` the model's probability of the
    label on the same sentences, `yhat_all` on every sentence of the group; `weights` 1/inclusion
    probability of each audited sentence. `floor`/`ceiling`: what the audit proves (its sentences of
    the label over the group's, and one less its others)."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    y, yhat, yhat_all = (np.asarray(a, dtype=float) for a in (y, yhat, yhat_all))
    if len(y) == 0:
        return Estimate("ppi", float("nan"), 0.0, 1.0, 0)
    w = None if weights is None else np.asarray(weights, dtype=float)
    point = float(np.ravel(ppi_mean_pointestimate(y, yhat, yhat_all, w=w))[0])
    low, high = (float(np.ravel(b)[0]) for b in ppi_mean_ci(y, yhat, yhat_all, alpha=ALPHA, w=w))
    if not y.any():
        # no sentence of the label in the audit: its variance cannot be estimated, and the interval is at
        # least as wide as what the audit alone allows (Wilson's for none in n)
        high = max(high, wilson(0, len(y), Z)[1])
    low, high = _bounds(low, high, floor, ceiling)
    return Estimate("ppi", float(min(max(point, floor), ceiling)), low, high, len(y))


def audited_bounds(y: np.ndarray, group_size: int) -> tuple[float, float]:
    """What an audit proves about a group's share: its sentences of the label are in the group, and so
    are its others. `audited_bounds(np.array([1, 0, 0]), 100) == (0.01, 0.98)`."""
    k = float(np.sum(y))
    return k / group_size, 1.0 - (len(y) - k) / group_size


def classify_and_count(
    counts: np.ndarray, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> list[Estimate]:
    """Each label's share of the model's labels, with a bootstrap interval over articles (`counts`: one row
    per article, one column per label)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=0)
    point = total / max(total.sum(), 1)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(counts), size=(n_resamples, len(counts)))
    sampled = counts[draws].sum(axis=1)
    shares = sampled / np.maximum(sampled.sum(axis=1, keepdims=True), 1)
    low, high = np.percentile(shares, [2.5, 97.5], axis=0)
    return [Estimate("cc", float(point[i]), float(low[i]), float(high[i]), 0) for i in range(counts.shape[1])]


# ---------------------------------------------------------------- quantification without an audit (QuaPy)


def posteriors_classifier(n_labels: int = len(LABELS)) -> Any:
    """A fitted scikit-learn classifier whose input is already the model's probabilities (one column per
    label): QuaPy's quantifiers then adjust the tag model itself, with no classifier of their own."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Posteriors(ClassifierMixin, BaseEstimator):
        def fit(self, X: np.ndarray, y: np.ndarray) -> Any:
            self.classes_ = np.arange(n_labels)
            return self

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return np.asarray(X, dtype=float)

        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.asarray(X).argmax(axis=1)

        def decision_function(self, X: np.ndarray) -> np.ndarray:
            return np.asarray(X, dtype=float)

    return Posteriors().fit(np.eye(n_labels), np.arange(n_labels))


def fit_quantifier(name: str, probabilities: np.ndarray, labels: np.ndarray) -> Any:
    """QuaPy's `name` (acc, pacc, emq) fitted on labeled sentences: the model's probabilities and gold ids."""
    from quapy.method.aggregative import ACC, EMQ, PACC

    kind = {"acc": ACC, "pacc": PACC, "emq": EMQ}[name]
    classifier = posteriors_classifier(probabilities.shape[1])
    quantifier = kind(classifier, fit_classifier=False, val_split=None)
    return quantifier.fit(np.asarray(probabilities, dtype=float), np.asarray(labels))


def quantify(
    quantifiers: Sequence[Any], name: str, article_probabilities: list[np.ndarray], seed: int = BOOTSTRAP_SEED
) -> list[Estimate]:
    """Each label's share by a quantifier, with a bootstrap interval: each resample takes one of
    `quantifiers` (fitted on a resample of the labeled set) and a resample of the group's articles."""
    whole = np.concatenate(article_probabilities)
    point = quantifiers[0].predict(whole)
    rng = np.random.default_rng(seed)
    draws = []
    for quantifier in quantifiers[1:]:
        picks = rng.integers(0, len(article_probabilities), len(article_probabilities))
        draws.append(quantifier.predict(np.concatenate([article_probabilities[i] for i in picks])))
    low, high = np.percentile(np.array(draws), [2.5, 97.5], axis=0)
    return [Estimate(name, float(point[i]), float(low[i]), float(high[i]), 0) for i in range(len(point))]


def fit_quantifiers(
    name: str, probabilities: np.ndarray, labels: np.ndarray, n_resamples: int, seed: int = BOOTSTRAP_SEED
) -> list[Any]:
    """The quantifier fitted on the labeled set, then on `n_resamples` bootstrap resamples of it (the
    uncertainty of the error rates it learns)."""
    rng = np.random.default_rng(seed)
    fitted = [fit_quantifier(name, probabilities, labels)]
    for _ in range(n_resamples):
        idx = rng.integers(0, len(labels), len(labels))
        fitted.append(fit_quantifier(name, probabilities[idx], labels[idx]))
    return fitted


# ---------------------------------------------------------------- proof by simulation


@dataclass
class Coverage:
    """How often each estimator's 95% interval held the true share over simulated audits of one size."""

    label: str
    audit: int
    draws: int
    truth: float
    coverage: dict[str, float]
    width: dict[str, float]  # mean interval width
    zero_printed: int  # audits that contained the label yet some estimator's share rounds to 0.0%


def simulate(
    gold: np.ndarray, probabilities: np.ndarray, audit: int, draws: int, seed: int = BOOTSTRAP_SEED
) -> list[Coverage]:
    """Draw `draws` simple random audits of `audit` sentences from a labeled corpus (`gold` label ids, the
    model's `probabilities` on every sentence): per label, how often PPI's, the audit's and
    classify-and-count's intervals cover the corpus's true share, and their widths."""
    rng = np.random.default_rng(seed)
    predicted = probabilities.argmax(axis=1)
    out = []
    for j, label in enumerate(LABELS[: probabilities.shape[1]]):
        y_all = (gold == j).astype(float)
        truth = float(y_all.mean())
        cc = classify_and_count(np.eye(probabilities.shape[1])[predicted], n_resamples=200, seed=seed)[j]
        hits = {"ppi": 0, "hand": 0, "cc": int(cc.low <= truth <= cc.high) * draws}
        widths = {"ppi": 0.0, "hand": 0.0, "cc": (cc.high - cc.low) * draws}
        zero = 0
        for _ in range(draws):
            idx = rng.choice(len(gold), audit, replace=False)
            floor, ceiling = audited_bounds(y_all[idx], len(gold))
            estimates = (ppi_share(y_all[idx], probabilities[idx, j], probabilities[:, j], floor=floor,
                                   ceiling=ceiling),
                         hand_share(y_all[idx], floor=floor))
            for e in estimates:
                hits[e.estimator] += int(e.low <= truth <= e.high)
                widths[e.estimator] += e.high - e.low
            if y_all[idx].sum() > 0 and min(e.share for e in (*estimates, cc)) < 0.0005:
                zero += 1
        out.append(Coverage(label, audit, draws, truth, {k: v / draws for k, v in hits.items()},
                            {k: v / draws for k, v in widths.items()}, zero))
    return out
