"""Temperature scaling: one scalar T fitted on validation so that probabilities match accuracy.

`softmax(log p / T)` keeps every prediction's label (argmax is unchanged) and only sharpens (T < 1)
or softens (T > 1) the probabilities. Saved as `temperature.json` in the model folder (`model_folder.save_temperature`); the
Classifier applies it whenever the file is there.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

_EPS = 1e-12


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Rescale probability rows by a temperature; rows still sum to 1."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities, _EPS, 1.0)) / temperature
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

