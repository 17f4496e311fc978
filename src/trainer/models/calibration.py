"""Temperature scaling: one scalar T fitted on validation so that probabilities match accuracy.

`softmax(log p / T)` keeps every prediction's label (argmax is unchanged) and only sharpens (T < 1)
or softens (T > 1) the probabilities. Bias-corrected temperature scaling (BCTS; Alexandari, Kundaje and
Shrikumar, ICML 2020) adds one offset per label, `softmax(log p / T + b)`, fitted with T on validation: it
moves the decision between labels too, which corrects a model whose training priors differ from the news it
reads (a student learning softened teacher probabilities over-predicts the rare label). Saved as
`temperature.json` in the model folder (`model_folder.save_temperature`); the Classifier applies it whenever
the file is there.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar

_EPS = 1e-12


def apply_temperature(probabilities: np.ndarray, temperature: float, bias: np.ndarray | None = None) -> np.ndarray:
    """Rescale probability rows by a temperature, and shift them by per-label offsets `bias` (log scale) when
    given; rows still sum to 1."""
    if temperature == 1.0 and bias is None:
        return probabilities
    logits = np.log(np.clip(probabilities, _EPS, 1.0)) / temperature
    if bias is not None:
        logits = logits + np.asarray(bias, dtype=logits.dtype)
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, gold_ids: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the negative log-likelihood of the gold labels."""
    rows = np.arange(len(gold_ids))

    def nll(log_t: float) -> float:
        scaled = apply_temperature(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(scaled[rows, gold_ids], _EPS, 1.0)).mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def fit_bias_and_temperature(probabilities: np.ndarray, gold_ids: np.ndarray) -> tuple[float, np.ndarray | None]:
    """BCTS: the temperature and per-label offsets (the first label's fixed at 0) that minimise the negative
    log-likelihood of the gold labels. When a label is absent from `gold_ids` there is nothing to fit its offset
    on, and the others' would run off to push it out (or, for the reference label, to suppress it): then only
    the temperature is fitted, and the offsets are None."""
    classes = probabilities.shape[1]
    if len(np.unique(gold_ids)) < classes:
        return fit_temperature(probabilities, gold_ids), None
    # float64: the optimiser's finite-difference steps vanish in float32 (it would stop where it started)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    rows = np.arange(len(gold_ids))

    def unpack(x: np.ndarray) -> tuple[float, np.ndarray]:
        return float(np.exp(x[0])), np.concatenate([[0.0], x[1:]])

    def nll(x: np.ndarray) -> float:
        scaled = apply_temperature(probabilities, *unpack(x))
        return float(-np.log(np.clip(scaled[rows, gold_ids], _EPS, 1.0)).mean())

    bounds = [(np.log(0.05), np.log(20.0))] + [(-10.0, 10.0)] * (classes - 1)
    result = minimize(nll, np.zeros(classes), method="L-BFGS-B", bounds=bounds)
    return unpack(result.x)
