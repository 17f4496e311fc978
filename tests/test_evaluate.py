"""Evaluation on a split and on any labeled file, the report files, and the MLflow run."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from trainer.config import TrackingConfig
from trainer.errors import DataError
from trainer.evaluate import evaluate, load_labeled_file
from trainer.metrics import compute_metrics


def test_metrics_on_a_hand_computed_case():
    gold = ["verified", "verified", "attributed", "unverified"]
    predicted = ["verified", "attributed", "attributed", "verified"]
    m = compute_metrics(gold, predicted)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["per_label"]["verified"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_label"]["attributed"]["precision"] == pytest.approx(0.5)
    assert m["per_label"]["unverified"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_evaluate_test_split_writes_report_and_logs_run(trained_sklearn, tmp_path):
    project, trained = trained_sklearn
    result = evaluate(
        trained.model_dir, split="test", output=tmp_path / "report", tracking=TrackingConfig(uri=project.tracking_uri)
    )
    assert result.metrics == trained.metrics["test"]  # same split, same model, same figures
    for name in ("metrics.json", "classification_report.txt", "confusion_matrix.png", "misclassified.jsonl"):
        assert (result.report_dir / name).is_file(), name
    wrong = [json.loads(line) for line in (result.report_dir / "misclassified.jsonl").read_text().splitlines()]
    matrix = result.metrics["confusion_matrix"]
    assert len(wrong) == sum(sum(row) for row in matrix) - sum(matrix[i][i] for i in range(3))
    assert all(w["gold"] != w["predicted"] and 0 <= w["score"] <= 1 for w in wrong)
    run = MlflowClient(tracking_uri=project.tracking_uri).get_run(result.run_id)
    assert run.data.tags["trainer.model"] == str(trained.model_dir)
    assert run.data.tags["trainer.training_run_id"] == trained.run_id
    assert run.data.metrics["eval_macro_f1"] == pytest.approx(result.metrics["macro_f1"])


def test_evaluate_on_a_labeled_jsonl(trained_sklearn, tmp_path):
    project, trained = trained_sklearn
    data = tmp_path / "dev.jsonl"
    rows = [
        {"text": "The council said the budget would pass.", "label": "attributed"},
        {"text": "The budget passed 6 to 3.", "label": "verified"},
        {"text": "The figures could not be verified.", "label": "unverified"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = evaluate(trained.model_dir, data=data, tracking=TrackingConfig(enabled=False))
    assert result.metrics["n"] == 3 and result.run_id is None
    assert result.report_dir == trained.model_dir / "evaluations" / "dev"


def test_labeled_file_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "label": "verified"}\n{"text": "y", "label": "rumor"}\n')
    with pytest.raises(DataError, match=r"labels \['rumor'\] are outside the scheme"):
        load_labeled_file(bad)
    bad.write_text('{"txt": "x", "label": "verified"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: expected a 'text' \(or 'sentence'\) and a 'label' field"):
        load_labeled_file(bad)
