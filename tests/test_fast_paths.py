"""Correctness of the fast paths: sorted batches equal the plain path, precision settings, int8 export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainer import load_classifier
from trainer.cli import main
from trainer.config import TrainingConfig, TransformerModel
from trainer.models.transformer import TransformerBackend, fast_bf16

TEXTS = [
    "The mayor said the bridge would reopen in May after repairs that cost $2 million.",
    "Shares rose.",
    "Rebels reportedly seized the airport on Sunday, though the claim could not be verified.",
    "It is unclear how many people were inside the building when it collapsed late on Tuesday night.",
    "Officials said two people died.",
    "\"We will rebuild,\" she said.",
] * 5


def test_length_sorted_batches_equal_one_sentence_at_a_time(trained_tiny):
    """Padding and sorting change nothing: same probabilities as a plain, unbatched pass."""
    backend = load_classifier(trained_tiny[1].model_dir).backend
    fast = backend.predict_proba(TEXTS, batch_size=16)
    plain = np.vstack([backend.predict_proba([t], batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(fast, plain, atol=1e-5)
    assert (fast.argmax(1) == plain.argmax(1)).all()


def test_same_probabilities_as_the_transformers_pipeline(trained_tiny):
    from transformers import pipeline

    model_dir = trained_tiny[1].model_dir
    ours = load_classifier(model_dir).predict(TEXTS)
    plain = pipeline("text-classification", model=str(model_dir), device=-1, top_k=None)
    theirs = plain(TEXTS, batch_size=8, truncation=True, max_length=64)
    for mine, scores in zip(ours, theirs):
        reference = {s["label"]: s["score"] for s in scores}
        assert mine.probabilities == pytest.approx(reference, abs=1e-4)


@pytest.mark.parametrize(("setting", "expected"), [("fp32", "fp32"), ("bf16", "bf16")])
def test_precision_forced_when_asked(tiny_model_dir, setting, expected):
    backend = TransformerBackend(TransformerModel(pretrained=str(tiny_model_dir)), TrainingConfig(precision=setting))
    assert backend.precision == expected
    assert backend._autocast().fast_dtype == torch.bfloat16 and backend._autocast()._enabled is (expected == "bf16")


def test_auto_precision_follows_the_hardware(tiny_model_dir):
    backend = TransformerBackend(TransformerModel(pretrained=str(tiny_model_dir)), TrainingConfig(precision="auto"))
    assert backend.precision == ("bf16" if fast_bf16(backend.device) else "fp32")


def test_int8_export_loads_and_predicts(trained_tiny, tmp_path, capsys):
    output = tmp_path / "int8"
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output)]) == 0
    assert json.loads((output / "trainer_model.json").read_text())["quantize"] == "int8"
    clf = load_classifier(output)
    assert clf.backend.precision == "int8"
    predictions = clf.predict(TEXTS)
    assert all(sum(p.probabilities.values()) == pytest.approx(1, abs=1e-5) for p in predictions)
    assert main(["export", "--model", str(trained_tiny[1].model_dir), "--output", str(output)]) == 2  # exists
