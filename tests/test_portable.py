"""Model folders that travel: no absolute path inside, and a copy used in another clone reads that clone's
data and logs into that clone's store, writing nothing back into the project it came from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import make_project


def _clone_like(root: Path):
    """A project folder as a clone is: a pyproject.toml at its top, the corpus in it."""
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'study'\n", encoding="utf-8")
    return make_project(root)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under a folder with its size and modification time."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def original(tmp_path, monkeypatch):
    """A tf-idf model trained in one clone (run from inside it, as `make train` is)."""
    from trainer.config import load_config
    from trainer.workflows.train import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = _clone_like(tmp_path / "first-clone")
    monkeypatch.chdir(project.root)
    trained = train(load_config(project.experiment("tfidf", {"backend": "sklearn"})))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri sets it for this process
    return project, trained


def test_a_model_folder_holds_no_absolute_path(original):
    project, trained = original
    root = str(project.root).encode()
    for path in trained.model_dir.rglob("*"):
        if path.is_file():
            assert root not in path.read_bytes(), path  # parquet, html, tables and config alike
    config = yaml.safe_load((trained.model_dir / "training_config.yaml").read_text())
    source = config["data"]["sources"][0]
    assert source["articles"] == "corpus/articles" and config["data"]["output_dir"] == "processed"
    assert config["tracking"]["uri"] == "sqlite:///mlflow.db"
    run = json.loads((trained.model_dir / "run.json").read_text())
    assert run["tracking_uri"] == "sqlite:///mlflow.db"


def test_a_copied_folder_evaluates_against_the_project_it_is_used_in(original, tmp_path, monkeypatch, caplog):
    from trainer.workflows.evaluate import evaluate

    first, trained = original
    second = _clone_like(tmp_path / "second-clone")
    copy = second.root / "models" / "tfidf"
    shutil.copytree(trained.model_dir, copy)
    before = _snapshot(first.root)
    monkeypatch.chdir(second.root)

    with caplog.at_level("INFO", logger="trainer"):
        result = evaluate(copy, split="test", n_resamples=20)

    assert _snapshot(first.root) == before  # nothing written back: no dataset, no run, no report
    assert (second.root / "processed" / "fixture").is_dir()  # the dataset is built from this clone's corpus
    run = json.loads((copy / "run.json").read_text())
    assert result.report["provenance"]["dataset"] == f"processed/fixture ({run['dataset_fingerprint']})"
    logged = MlflowClient(tracking_uri=f"sqlite:///{second.root / 'mlflow.db'}").get_run(result.run_id)
    assert logged.data.tags["trainer.kind"] == "evaluate"
    said = caplog.text
    assert f"sqlite:///{second.root / 'mlflow.db'}" in said and "processed/fixture" in said
    assert "not the one the model was trained on" not in said  # the same data gives the same fingerprint


def test_a_copy_whose_data_differs_says_so(original, tmp_path, monkeypatch, caplog):
    from trainer.workflows.evaluate import evaluate

    _, trained = original
    second = _clone_like(tmp_path / "second-clone")
    labels = second.root / "corpus" / "labels.jsonl"
    lines = labels.read_text(encoding="utf-8").splitlines()
    labels.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # one gold label fewer
    copy = second.root / "models" / "tfidf"
    shutil.copytree(trained.model_dir, copy)
    monkeypatch.chdir(second.root)
    with caplog.at_level("WARNING", logger="trainer"):
        evaluate(copy, split="test", n_resamples=20)
    assert "is not the one the model was trained on" in caplog.text


def test_an_old_folder_naming_another_checkouts_store_is_not_written_back(original, tmp_path):
    from trainer.outputs import model_folder

    first, trained = original
    second = _clone_like(tmp_path / "second-clone")
    copy = second.root / "models" / "tfidf"
    shutil.copytree(trained.model_dir, copy)
    run = json.loads((copy / "run.json").read_text())
    run["tracking_uri"] = f"sqlite:///{first.root / 'mlflow.db'}"  # as folders saved before this change hold
    (copy / "run.json").write_text(json.dumps(run))
    assert model_folder.training_store(copy) is None
    assert model_folder.training_store(trained.model_dir) == f"sqlite:///{first.root / 'mlflow.db'}"
