"""Data-parallel training through torchrun: two CPU processes (gloo) on the tiny model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import tiny_model_section
from trainer.config import load_config
from trainer.workflows.train import train

TRAINING = {"epochs": 2, "batch_size": 8, "learning_rate": 2e-3, "seed": 7, "precision": "fp32",
            "class_weighting": False}


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="no torchrun")
def test_torchrun_two_processes_match_one(project, tiny_model_dir):
    single = train(load_config(project.experiment("single", tiny_model_section(tiny_model_dir), TRAINING)))
    config = project.experiment("ddp", tiny_model_section(tiny_model_dir), TRAINING)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    process = subprocess.run(
        [torchrun, "--nproc_per_node=2", "-m", "trainer.cli", "-q", "train", "--config", str(config)],
        cwd=project.root, capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.count("model folder:") == 1  # only rank 0 prints

    client = MlflowClient(tracking_uri=project.tracking_uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    runs = client.search_runs([experiment], "tags.mlflow.runName = 'ddp'")
    assert len(runs) == 1  # only rank 0 logs

    def losses(run_id: str) -> list[float]:
        return [m.value for m in sorted(client.get_metric_history(run_id, "train_loss"), key=lambda m: m.step)]

    # same global batch, gradients averaged over the two shards: the same run within float noise
    assert losses(runs[0].info.run_id) == pytest.approx(losses(single.run_id), abs=0.01)
    assert (project.root / "models" / "ddp" / "model.safetensors").is_file()
    assert not list((project.root / "models").glob(".ddp.*"))
