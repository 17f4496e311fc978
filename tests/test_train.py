"""Training through the real `train` path, the model folder, and the MLflow run read back."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY_TRAINING, tiny_model_section
from trainer.cli import main
from trainer.config import load_config
from trainer.errors import ConfigError
from trainer.labels import LABELS
from trainer.workflows.train import train
from trainer.models.loop import EpochDone


def test_model_folder_is_self_contained(trained_tiny):
    _, result = trained_tiny
    folder = result.model_dir
    for name in ("model.safetensors", "config.json", "tokenizer.json", "trainer_model.json",
                 "training_config.json", "metrics.json", "run.json"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "trainer_model.json").read_text())["labels"] == list(LABELS)
    assert json.loads((folder / "config.json").read_text())["id2label"] == {str(i): l for i, l in enumerate(LABELS)}
    run = json.loads((folder / "run.json").read_text())
    assert run["run_id"] == result.run_id and len(run["dataset_fingerprint"]) == 64
    assert not list(folder.parent.glob(".*tmp*"))  # no temporary folder left behind


def test_training_loop_learns(tiny_model_dir):
    """The training loop can fit eight sentences: the loss falls well below chance (ln 3 = 1.10)."""
    from trainer.config import TrainingConfig, TransformerModel
    from trainer.models.transformer import TransformerBackend
    from trainer.workflows.predict import Classifier

    texts = ["The mayor said the bridge would reopen.", "The bridge was built in 1931.",
             "The video could not be verified.", "Officials said two people died.", "Shares rose 4% on Thursday.",
             "Rebels reportedly seized the town.", "The court said the law was void.", "It is unclear how many died."]
    labels = ["attributed", "verified", "unverified", "attributed", "verified", "unverified", "attributed", "unverified"]
    training = TrainingConfig(epochs=20, batch_size=8, learning_rate=1e-2, precision="fp32",
                              early_stopping_patience=100, warmup_ratio=0.0)
    losses: list[float] = []
    backend = TransformerBackend.from_config(TransformerModel(pretrained=str(tiny_model_dir), max_length=32), training)
    loop = backend.training_loop(texts, labels)  # the loop's epoch events carry the training loss
    losses += [event.metrics["train_loss"] for event in loop if isinstance(event, EpochDone)]
    loop.finish()
    assert losses[0] > 1.0 and losses[-1] < 0.5
    predicted = [p.label for p in Classifier(backend, "mem").predict(texts)]
    assert sum(p == g for p, g in zip(predicted, labels)) >= 7


def test_mlflow_run_has_params_metrics_artifacts_dataset_and_model(trained_tiny):
    project, result = trained_tiny
    client = MlflowClient(tracking_uri=project.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["training.epochs"] == str(TINY_TRAINING["epochs"])
    assert run.data.params["model.backend"] == "transformer"
    assert "test_macro_f1" in run.data.metrics and "test_unverified_f1" in run.data.metrics
    history = client.get_metric_history(result.run_id, "train_loss")
    assert [m.step for m in history] == list(range(1, len(history) + 1)) and len(history) >= 2
    # the kept epoch's score under its own name; the per-epoch curve keeps its steps, none of them 0
    assert run.data.metrics["best_val_macro_f1"] == pytest.approx(result.metrics["validation"]["macro_f1"])
    curve = client.get_metric_history(result.run_id, "val_macro_f1")
    assert [m.step for m in curve] == list(range(1, len(curve) + 1))
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "test_report")}
    assert {"test_report/confusion_matrix.png", "test_report/classification_report.txt"} <= artifacts
    config_artifacts = {a.path for a in client.list_artifacts(result.run_id, "config")}
    assert "config/resolved_config.json" in config_artifacts
    inputs = run.inputs.dataset_inputs
    assert {i.dataset.name for i in inputs} == {"fixture-train", "fixture-validation", "fixture-test"}
    fingerprint = json.loads((result.model_dir / "run.json").read_text())["dataset_fingerprint"]
    assert all(i.dataset.digest == fingerprint[:36] for i in inputs)

    # the experiment opens in MLflow's model-training view; the logged model is named after the run,
    # and the kept epoch's and the test split's figures are linked to it, each with its split
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert result.model_uri == f"runs:/{result.run_id}/{run.info.run_name}"
    mlflow.set_tracking_uri(project.tracking_uri)
    (logged,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list",
                                            filter_string=f"source_run_id = '{result.run_id}'")
    assert logged.name == run.info.run_name
    linked = {m.key: m for m in logged.metrics}
    assert linked["best_val_macro_f1"].value == pytest.approx(result.metrics["validation"]["macro_f1"])
    assert linked["test_macro_f1"].dataset_name == "fixture-test"
    assert linked["best_val_macro_f1"].dataset_name == "fixture-validation"
    assert "temperature" not in run.data.metrics  # no scaling was fitted
    assert run.data.params["model.pretrained"] not in ("None", "")

    model = mlflow.pyfunc.load_model(result.model_uri)
    frame = model.predict(["The mayor said the bridge would reopen.", "Shares rose 4% on Thursday."])
    assert list(frame["label"]) and set(frame["label"]) <= set(LABELS)
    assert np.allclose(frame[[f"p_{l}" for l in LABELS]].sum(axis=1), 1.0, atol=1e-4)


def test_same_seed_same_metrics(project, tiny_model_dir):
    training = {**TINY_TRAINING, "epochs": 2}
    a = train(load_config(project.experiment("a", tiny_model_section(tiny_model_dir), training)))
    b = train(load_config(project.experiment("b", tiny_model_section(tiny_model_dir), training)))
    assert a.metrics == b.metrics


def test_existing_run_name_needs_overwrite(trained_sklearn):
    project, result = trained_sklearn
    config = load_config(project.experiment("tfidf", {"backend": "sklearn"}))
    with pytest.raises(ConfigError, match="existing model folder .*pass --overwrite"):
        train(config)


def test_sklearn_baseline_path(trained_sklearn):
    _, result = trained_sklearn
    assert (result.model_dir / "pipeline.skops").is_file()
    assert result.metrics["test"]["n"] > 0 and 0 <= result.metrics["test"]["macro_f1"] <= 1
    assert result.run_id is not None


def test_tracking_failure_never_loses_the_model(project):
    path = project.experiment("offline", {"backend": "sklearn"})
    config = load_config(path, ["tracking.uri=http://127.0.0.1:9"])  # nothing listens on port 9
    result = train(config)
    assert result.tracking_error is not None
    assert (result.model_dir / "pipeline.skops").is_file()


def test_train_cli_prints_metrics_folder_and_run(project, capsys):
    path = project.experiment("cli", {"backend": "sklearn"})
    assert main(["-q", "train", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "model folder:" in out and "MLflow run:" in out
