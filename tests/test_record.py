"""What a researcher sees: the MLflow record of evaluations, the report's files, the command line's
output without a terminal, and config paths taken from the config's project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from trainer.config import TrackingConfig, load_config, load_data_config, project_root
from trainer.workflows.evaluate import evaluate
from trainer.labels import LABELS
from trainer.metrics import MIN_BIN_N, reliability

REPO = Path(__file__).resolve().parents[1]


def _dev_file(tmp_path: Path) -> Path:
    rows = [
        {"text": "The council said the budget would pass.", "label": "attributed", "article": "a", "outlet": "x"},
        {"text": "The budget passed 6 to 3.", "label": "verified", "article": "a", "outlet": "x"},
        {"text": "The figures could not be verified.", "label": "unverified", "article": "b", "outlet": "y"},
        {"text": "Officials reportedly resigned.", "label": "unverified", "article": "b", "outlet": "y"},
        {"text": "The bridge reopened on Monday.", "label": "verified", "article": "c", "outlet": "x"},
    ]
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_an_evaluation_nests_under_its_training_run_and_links_its_metrics_to_the_model(trained_sklearn, tmp_path):
    project, trained = trained_sklearn
    data = _dev_file(tmp_path)
    tracking = TrackingConfig(uri=project.tracking_uri, experiment="tests")
    first = evaluate(trained.model_dir, data=data, output=tmp_path / "r1", tracking=tracking, n_resamples=20)
    again = evaluate(trained.model_dir, data=data, output=tmp_path / "r2", tracking=tracking, n_resamples=20)
    client = MlflowClient(tracking_uri=project.tracking_uri)
    run = client.get_run(again.run_id)
    assert run.data.tags["mlflow.parentRunId"] == trained.run_id
    figures = run.data.metrics  # each F1 with its interval, as the report has them
    assert figures["eval_macro_f1_ci_low"] <= figures["eval_macro_f1"] <= figures["eval_macro_f1_ci_high"]
    assert {f"eval_{label}_f1_ci_high" for label in LABELS} <= set(figures)
    assert "test_macro_f1_ci_low" in client.get_run(trained.run_id).data.metrics
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == "dev" and dataset_input.dataset.digest == \
        json.loads((again.report_dir / "report.json").read_text())["provenance"]["data_fingerprint"][:36]
    # the metrics are the logged model's, on that dataset
    mlflow.set_tracking_uri(project.tracking_uri)
    (logged,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list",
                                            filter_string=f"source_run_id = '{trained.run_id}'")
    linked = [m for m in logged.metrics if m.key == "eval_macro_f1" and m.run_id == again.run_id]
    assert linked and linked[0].dataset_name == "dev"
    assert linked[0].value == pytest.approx(again.metrics["macro_f1"])
    # the repeat on the same data replaced the first, which is kept as a deleted run
    assert client.get_run(first.run_id).info.lifecycle_stage == "deleted"
    assert run.info.lifecycle_stage == "active"


def test_the_report_has_every_prediction_tables_svg_and_provenance(trained_sklearn, tmp_path):
    project, trained = trained_sklearn
    result = evaluate(trained.model_dir, data=_dev_file(tmp_path), output=tmp_path / "r",
                      tracking=TrackingConfig(enabled=False), n_resamples=50)
    folder = result.report_dir
    frame = pd.read_parquet(folder / "predictions.parquet")
    assert len(frame) == 5 and list(frame["outlet"]) == ["x", "x", "y", "y", "x"]
    assert list(frame["article"]) == ["a", "a", "b", "b", "c"]
    assert np.allclose(frame[[f"p_{label}" for label in LABELS]].sum(axis=1), 1.0, atol=1e-4)
    assert list(frame["predicted"]) == result.predicted
    assert (frame["correct"] == (frame["gold"] == frame["predicted"])).all()
    wrong = [json.loads(line) for line in (folder / "misclassified.jsonl").read_text().splitlines()]
    assert all("outlet" in w and "article" in w for w in wrong)
    for name in ("confusion_matrix.svg", "reliability.svg", "tables/per_label.csv", "tables/per_label.tex",
                 "tables/by_outlet.csv", "tables/provenance.csv"):
        assert (folder / name).is_file(), name
    per_label = pd.read_csv(folder / "tables" / "per_label.csv")
    assert list(per_label["n"]) == [2, 1, 2, 5]  # verified, attributed, unverified, macro
    assert "\\begin{tabular}" in (folder / "tables" / "per_label.tex").read_text()
    report = json.loads((folder / "report.json").read_text())
    assert report["provenance"]["training_run"] == trained.run_id
    run = json.loads((trained.model_dir / "run.json").read_text())
    assert report["provenance"]["model_dataset"] == run["dataset_fingerprint"]
    assert report["provenance"]["trainer_version"] and report["provenance"]["created"]
    # slices carry per-label n and intervals
    outlet_x = report["slices"]["outlet"]["x"]
    assert outlet_x["n"] == 3 and set(outlet_x["ci"]) == {f"{label}_f1" for label in LABELS} | {"macro_f1"}
    page = (folder / "report.html").read_text()
    assert "Provenance" in page and trained.run_id in page and "(n)" in page


def test_reliability_bins_carry_counts_intervals_and_mark_the_small_ones(tmp_path):
    from trainer.outputs.report import plot_reliability

    rng = np.random.default_rng(0)
    confidence = np.concatenate([rng.uniform(0.9, 1.0, 500), [0.45], rng.uniform(0.6, 0.7, 30)])
    correct = rng.uniform(size=len(confidence)) < confidence
    figures = reliability(confidence, correct)
    bins = [b for b in figures["bins"] if b["n"]]
    assert sum(b["n"] for b in bins) == figures["n"] == 531
    lonely = next(b for b in bins if b["low"] < 0.45 <= b["high"])
    assert lonely["n"] == 1 and lonely["too_few"] and lonely["accuracy_ci"][1] - lonely["accuracy_ci"][0] > 0.5
    top = bins[-1]
    assert top["n"] == 500 and not top["too_few"] and top["accuracy_ci"][0] <= top["accuracy"] <= top["accuracy_ci"][1]
    plot_reliability(figures, tmp_path / "reliability.png", "toy")
    svg = (tmp_path / "reliability.svg").read_text()
    # every bin's count is written on the plot, and the small bins are named in the legend
    assert all(f">{b['n']}<" in svg for b in bins)
    assert f"n &lt; {MIN_BIN_N}: too few to read" in svg


def test_compare_markdown_has_counts_and_per_label_intervals(trained_sklearn, tmp_path, monkeypatch):
    from trainer.workflows.compare import compare, to_markdown

    project, sk = trained_sklearn
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
    table = compare([str(sk.model_dir), str(sk.model_dir)], data=_dev_file(tmp_path), n_resamples=50)
    markdown = to_markdown(table)
    assert "(5 sentences from 3 articles; gold verified 2, attributed 1, unverified 2)" in markdown
    assert "verified F1 [95% CI] (n=2)" in markdown and "macro-F1 [95% CI] (n=5)" in markdown
    assert markdown.count(" [") >= 8  # an interval in every F1 cell


def test_config_paths_are_taken_from_the_config_files_project(project, tmp_path, monkeypatch):
    # a project folder (marked by its pyproject.toml) with relative paths, loaded from elsewhere
    root = tmp_path / "study"
    (root / "configs" / "data").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'study'\n")
    source = project.data_config()["sources"][0]
    for key in ("articles", "labels", "metadata"):
        target = root / "corpus" / Path(source[key]).name
        target.parent.mkdir(exist_ok=True)
        os.symlink(source[key], target)
        source[key] = f"corpus/{target.name}"
    data = {"name": "study", "sources": [source], "split": {"validation": 0.15, "test": 0.25, "seed": 3}}
    (root / "configs" / "data" / "study.yaml").write_text(yaml.safe_dump(data))
    (root / "configs" / "exp.yaml").write_text(yaml.safe_dump(
        {"run_name": "r", "data": "configs/data/study.yaml", "model": {"backend": "sklearn"}}))
    assert project_root(root / "configs" / "exp.yaml") == root
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(root / "configs" / "exp.yaml")
    assert config.output_dir == root / "models" and config.data.output_dir == root / "data" / "processed"
    assert config.data.sources[0].articles == root / "corpus" / "articles"
    # the dataset fingerprint does not depend on where the project lies or where the command runs
    from trainer.data.build import fingerprint

    here = fingerprint(load_data_config(root / "configs" / "data" / "study.yaml"))
    monkeypatch.chdir(root)
    assert fingerprint(load_data_config(Path("configs/data/study.yaml"))) == here
    moved = tmp_path / "moved"
    root.rename(moved)
    assert fingerprint(load_data_config(moved / "configs" / "data" / "study.yaml")) == here


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # stderr is a pipe, not a terminal: what `make train > log 2>&1` sees
    env = {**os.environ, "TRAINER_PROGRESS_EVERY_S": "0"}
    return subprocess.run([sys.executable, "-m", "trainer.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_without_a_terminal_progress_is_log_lines_and_quiet_is_quiet(trained_tiny, tmp_path):
    project, trained = trained_tiny
    data = _dev_file(tmp_path)
    loud = _cli("evaluate", "--model", str(trained.model_dir), "--data", str(data), "--output", str(tmp_path / "a"),
                "--resamples", "20", cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    quiet = _cli("-q", "evaluate", "--model", str(trained.model_dir), "--data", str(data), "--output",
                 str(tmp_path / "b"), "--resamples", "20", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    for done in (loud, quiet):
        assert "\r" not in done.stderr + done.stdout and "\x1b[" not in done.stderr + done.stdout
    assert "INFO trainer.workflows.evaluate: evaluating" in loud.stderr
    assert "INFO" not in quiet.stderr and "Loading weights" not in quiet.stderr
    assert quiet.stdout.splitlines()[0].startswith("label")


def test_log_progress_writes_plain_lines(caplog):
    from trainer.infra.progress import LogProgress

    caplog.set_level("INFO", logger="trainer.infra.progress")
    items = list(LogProgress(range(4), desc="reading", unit="article", every_s=0))
    assert items == [0, 1, 2, 3]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("reading: 1/4 articles (25%)") and lines[-1].startswith("reading: 4/4 articles (100%)")
    assert not any("\r" in line for line in lines)


def test_version_flag_prints_the_version():
    done = subprocess.run([sys.executable, "-m", "trainer.cli", "--version"], capture_output=True, text=True)
    from importlib.metadata import version

    assert done.returncode == 0 and done.stdout.strip() == f"trainer {version('trainer')}"


def test_a_data_config_means_the_same_through_its_experiment_config(project, tmp_path, monkeypatch):
    """Without a pyproject.toml, each file's paths start at its own folder: the data config's paths are
    the same (and so is its fingerprint) whether build-data or train loads it."""
    from trainer.data.build import fingerprint

    root = tmp_path / "loose"
    (root / "data").mkdir(parents=True)
    source = project.data_config()["sources"][0]
    for key in ("articles", "labels", "metadata"):
        os.symlink(source[key], root / "data" / Path(source[key]).name)
        source[key] = Path(source[key]).name  # relative to the data config's own folder
    (root / "data" / "d.yaml").write_text(yaml.safe_dump({"name": "d", "sources": [source]}))
    (root / "exp.yaml").write_text(yaml.safe_dump({"run_name": "r", "data": "data/d.yaml",
                                                   "model": {"backend": "sklearn"}}))
    monkeypatch.chdir(tmp_path)
    direct = load_data_config(root / "data" / "d.yaml")
    inlined = load_config(root / "exp.yaml", ["data.split.seed=13"]).data
    assert direct.sources[0].articles == inlined.sources[0].articles == root / "data" / "articles"
    assert fingerprint(direct) == fingerprint(inlined)


def test_the_report_gives_shares_typed_columns_and_each_mistake_where_it_stands(trained_sklearn, tmp_path):
    _, trained = trained_sklearn
    rows = [json.loads(line) for line in _dev_file(tmp_path).read_text().splitlines()]
    for n, row in enumerate(rows):
        row["confident"] = n % 2 == 0  # a JSON boolean, as the real-news dev set has it
        row["paragraph"] = f"Before. {row['text']} After."
    data = tmp_path / "typed.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = evaluate(trained.model_dir, data=data, output=tmp_path / "r", tracking=TrackingConfig(enabled=False),
                      n_resamples=30)
    folder = result.report_dir
    frame = pd.read_parquet(folder / "predictions.parquet")
    assert frame["confident"].dtype == bool and list(frame["confident"]) == [True, False, True, False, True]
    assert "paragraph" not in frame and "paragraph" not in result.report["slices"]  # context, not a slice
    wrong = [json.loads(line) for line in (folder / "misclassified.jsonl").read_text().splitlines()]
    for mistake in wrong:
        assert isinstance(mistake["confident"], bool) and mistake["article"] in {"a", "b", "c"}
        assert mistake["paragraph"] == f"Before. {mistake['text']} After." and isinstance(mistake["rule_cues"], list)
    said = [m for m in wrong if "said" in m["text"]]
    assert all(any("said" in cue for cue in m["rule_cues"]) for m in said)
    shares = pd.read_csv(folder / "tables" / "shares.csv")
    assert list(shares["label"]) == list(LABELS)
    gold = result.report["shares"]["gold"]
    assert list(shares["true share"]) == pytest.approx([round(gold[label], 3) for label in LABELS])
    assert all(" [" in cell for cell in shares["raw share [95% CI]"])
    page = (folder / "report.html").read_text()
    assert "<h2>Label shares</h2>" in page and "rule cues" in page


def test_a_split_evaluation_shows_each_mistake_with_its_neighbours(trained_sklearn, tmp_path):
    _, trained = trained_sklearn
    result = evaluate(trained.model_dir, split="test", output=tmp_path / "r", tracking=TrackingConfig(enabled=False),
                      n_resamples=20)
    wrong = [json.loads(line) for line in (result.report_dir / "misclassified.jsonl").read_text().splitlines()]
    assert wrong, "the tiny tf-idf model makes mistakes on the fixture's test split"
    for mistake in wrong:
        assert f"[{mistake['text']}]" in mistake["context"] and isinstance(mistake["sentence_index"], int)
        assert mistake["article"].startswith("corpus:") and not mistake["article"].startswith("corpus:/")
