"""Evaluation on a split and on any labeled file, the report files, and the MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import FIXTURES
from sklearn.metrics import f1_score

from trainer.config import TrackingConfig, load_config
from trainer.errors import DataError, ModelLoadError
from trainer.labels import LABELS
from trainer.outputs.model_folder import write_manifest
from trainer.workflows.predict import load_classifier
from trainer.workflows.train import train
from trainer.workflows.evaluate import evaluate, rows_from_file
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
        rows_from_file(bad)
    assert rows_from_file(bad, {"rumor": "unverified"}).gold == ["verified", "unverified"]
    bad.write_text('{"txt": "x", "label": "verified"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:1: expected a 'text' \(or 'sentence'\) and a 'label' field"):
        rows_from_file(bad)


# ---------------------------------------------------------------- issue: publishable evaluation

import numpy as np

from trainer.models.calibration import apply_temperature, fit_bias_and_temperature, fit_temperature
from trainer.metrics import bootstrap_ci, paired_bootstrap, reliability


def _toy(n_articles=40, seed=0):
    rng = np.random.default_rng(seed)
    gold, pred, groups = [], [], []
    labels = ["verified", "attributed", "unverified"]
    for a in range(n_articles):
        for _ in range(5):
            g = labels[rng.integers(0, 3)]
            gold.append(g)
            pred.append(g if rng.random() < 0.8 else labels[rng.integers(0, 3)])
            groups.append(f"a{a}")
    return gold, pred, groups


def test_bootstrap_interval_contains_point_estimate_and_shrinks_with_data():
    from trainer.metrics import compute_metrics

    gold, pred, groups = _toy()
    point = compute_metrics(gold, pred)
    ci = bootstrap_ci(gold, pred, groups, n_resamples=300)
    assert ci["macro_f1"][0] <= point["macro_f1"] <= ci["macro_f1"][1]
    for label in ("verified", "attributed", "unverified"):
        assert ci[f"{label}_f1"][0] <= point["per_label"][label]["f1"] <= ci[f"{label}_f1"][1]
    big = bootstrap_ci(*_toy(n_articles=400), n_resamples=300)
    assert big["macro_f1"][1] - big["macro_f1"][0] < ci["macro_f1"][1] - ci["macro_f1"][0]


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    gold, pred, groups = _toy(n_articles=200)
    same = paired_bootstrap(gold, pred, list(pred), groups, n_resamples=300)
    assert same["delta_macro_f1"] == 0 and same["p_value"] == 1.0
    perfect = paired_bootstrap(gold, pred, list(gold), groups, n_resamples=300)
    assert perfect["delta_macro_f1"] > 0.1 and perfect["p_value"] < 0.01 and perfect["ci_low"] > 0


def test_ece_near_zero_for_a_calibrated_model_and_high_for_an_overconfident_one():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.34, 1.0, 20000)
    calibrated = rng.random(20000) < confidence  # right exactly as often as it says
    assert reliability(confidence, calibrated)["ece"] < 0.02
    overconfident = rng.random(20000) < 0.5
    assert reliability(np.full(20000, 0.95), overconfident)["ece"] > 0.4


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(2)
    n = 3000
    gold = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), gold] += 1.0
    overconfident = np.exp(logits * 4) / np.exp(logits * 4).sum(axis=1, keepdims=True)
    temperature = fit_temperature(overconfident, gold)
    assert 3 < temperature < 5  # the factor of 4 put in, recovered
    scaled = apply_temperature(overconfident, temperature)
    assert np.allclose(scaled.sum(axis=1), 1) and (scaled.argmax(1) == overconfident.argmax(1)).all()
    before = reliability(overconfident.max(1), overconfident.argmax(1) == gold)["ece"]
    after = reliability(scaled.max(1), scaled.argmax(1) == gold)["ece"]
    assert after < before / 2


def test_class_bias_recovers_a_shifted_prior():
    """A model that over-predicts the rare label (its scores pushed up by a fixed log-offset, as a student of
    softened teacher probabilities is): BCTS finds the offset, and the decision gets better."""
    rng = np.random.default_rng(3)
    n = 6000
    gold = rng.choice(3, n, p=[0.55, 0.4, 0.05])
    scores = rng.normal(0, 1, (n, 3))
    scores[np.arange(n), gold] += 2.0
    logits = 2.0 * scores + np.log([0.55, 0.4, 0.05])  # the true log-posterior (unit-variance noise, shift 2)
    shifted = logits + np.array([0.0, 0.0, 2.0])  # the model's extra push towards the rare label
    probabilities = (np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)).astype(np.float32)  # as models give
    temperature, bias = fit_bias_and_temperature(probabilities, gold)
    assert 0.8 < temperature < 1.25 and bias[0] == 0
    assert -2.6 < bias[2] < -1.4 and abs(bias[1]) < 0.4  # the push, undone
    fixed = apply_temperature(probabilities, temperature, bias)
    assert np.allclose(fixed.sum(axis=1), 1)
    macro = [f1_score(gold, p.argmax(1), average="macro") for p in (probabilities, fixed)]
    assert macro[1] > macro[0] + 0.02
    for missing in (0, 2):  # a label validation lacks (the reference one too): a temperature only, no offsets
        kept = gold != missing
        fitted = fit_bias_and_temperature(probabilities[kept], gold[kept])
        assert fitted[1] is None and fitted[0] == pytest.approx(fit_temperature(probabilities[kept], gold[kept]))


def test_class_bias_is_saved_applied_and_carded(project):
    config = load_config(project.experiment("tfidf-bias", {"backend": "sklearn"}, {"class_bias": True}))
    result = train(config)
    record = json.loads((result.model_dir / "temperature.json").read_text())
    assert set(record["bias"]) == set(LABELS) and record["bias"]["verified"] == 0
    assert record["bias"]["attributed"] != 0 and record["temperature"] != 1  # fitted, not left where it started
    classifier = load_classifier(result.model_dir)
    assert classifier.bias == record["bias"]
    text = "Officials reportedly considered closing the road."
    raw = classifier.backend.predict_proba([text])
    expected = apply_temperature(raw, record["temperature"], np.array([record["bias"][k] for k in LABELS]))
    got = classifier.predict(text)[0].probabilities
    assert np.allclose([got[k] for k in LABELS], expected[0], atol=1e-6)
    card = (result.model_dir / "README.md").read_text(encoding="utf-8")
    assert "Bias-corrected temperature scaling" in card and "training.class_bias" in card
    (result.model_dir / "temperature.json").write_text(json.dumps({**record, "bias": {"verified": "x"}}))
    write_manifest(result.model_dir)  # a file written wrong at save time, not changed since
    with pytest.raises(ModelLoadError, match="expected 'bias' to give a finite number"):
        load_classifier(result.model_dir)


def test_class_bias_without_offsets_still_saves_its_temperature(project, monkeypatch):
    """A validation split that lacks a label gets a temperature only: the test report used it, so the folder
    must hold it too (else predict would give other probabilities than the report)."""
    import trainer.workflows.train as train_module

    monkeypatch.setattr(train_module, "fit_bias_and_temperature", lambda probabilities, gold: (0.7, None))
    config = load_config(project.experiment("tfidf-nobias", {"backend": "sklearn"}, {"class_bias": True}))
    result = train(config)
    record = json.loads((result.model_dir / "temperature.json").read_text())
    assert record["temperature"] == 0.7 and "bias" not in record
    classifier = load_classifier(result.model_dir)
    assert classifier.temperature == 0.7 and classifier.bias is None


def test_report_files_html_and_json(trained_sklearn, tmp_path):
    import json as _json

    project, trained = trained_sklearn
    result = evaluate(trained.model_dir, split="test", output=tmp_path / "r", tracking=TrackingConfig(enabled=False),
                      n_resamples=200)
    report = _json.loads((result.report_dir / "report.json").read_text())
    assert report["metrics"]["macro_f1"] == result.metrics["macro_f1"]
    assert set(report["ci"]) == {"verified_f1", "attributed_f1", "unverified_f1", "macro_f1"}
    assert report["ci_unit"] == "articles" and "beat" in report["slices"]
    assert all(len(v) <= 5 for v in report["confident_mistakes"].values())
    page = (result.report_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "F1 [95% CI]" in page and "<script" not in page


def test_compare_table_and_markdown(trained_sklearn, trained_tiny, tmp_path, monkeypatch):
    from trainer.workflows.compare import compare, to_markdown

    project, sk = trained_sklearn
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
    table = compare([str(sk.model_dir), str(trained_tiny[1].model_dir)], split="test", n_resamples=200)
    assert [r["model"] for r in table.rows] == [str(sk.model_dir), str(trained_tiny[1].model_dir)]
    assert "vs_reference" not in table.rows[0] and 0 <= table.rows[1]["vs_reference"]["p_value"] <= 1
    expected_delta = table.rows[1]["macro_f1"] - table.rows[0]["macro_f1"]
    assert table.rows[1]["vs_reference"]["delta_macro_f1"] == pytest.approx(expected_delta)
    markdown = to_markdown(table)
    assert markdown.count("\n|") == 4 and "reference" in markdown and "paired bootstrap over articles" in markdown


def test_evaluate_any_data_config_without_building(trained_sklearn, tmp_path):
    project, trained = trained_sklearn
    config = project.write("data/eval.yaml", project.data_config())
    result = evaluate(trained.model_dir, data_config=config, tracking=TrackingConfig(enabled=False), n_resamples=50)
    assert result.metrics["n"] == 72 and not (project.root / "processed" / "eval").exists()


def test_cross_validation_parent_and_nested_runs(project):
    from trainer.config import load_config
    from trainer.workflows.train import cross_validate

    result = cross_validate(load_config(project.experiment("cv", {"backend": "sklearn"})), 3)
    assert len(result.folds) == 3 and sum(f["n"] for f in result.folds) == 72  # every sentence tested once
    assert result.summary["macro_f1"]["mean"] == pytest.approx(np.mean([f["macro_f1"] for f in result.folds]))
    client = MlflowClient(tracking_uri=project.tracking_uri)
    children = client.search_runs(
        [client.get_run(result.run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(children) == 3 and all("test_macro_f1" in c.data.metrics for c in children)


def test_evaluate_an_mlflow_uri_downloads_once_and_reports_under_evaluations(trained_sklearn, tmp_path, monkeypatch):
    import mlflow

    project, trained = trained_sklearn
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
    mlflow.set_tracking_uri(project.tracking_uri)
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [
        {"text": "The council said the budget would pass.", "label": "attributed"},
        {"text": "The budget passed 6 to 3.", "label": "verified"},
    ]))
    uri = trained.model_uri
    result = evaluate(uri, data=data, tracking=TrackingConfig(uri=project.tracking_uri), n_resamples=20)
    assert result.report_dir == Path("evaluations") / f"runs-{trained.run_id}-{uri.rsplit('/', 1)[1]}" / "dev"
    assert (tmp_path / result.report_dir / "report.json").is_file()
    assert not (tmp_path / "runs:").exists()  # no folder named after the URI
    run = MlflowClient(tracking_uri=project.tracking_uri).get_run(result.run_id)
    assert run.data.tags["trainer.training_run_id"] == trained.run_id  # read from the downloaded folder


def test_a_data_config_that_cannot_exclude_articles_is_refused(tmp_path):
    import yaml

    from trainer.config import load_data_config
    from trainer.errors import ConfigError

    exclude = tmp_path / "exclude.txt"
    exclude.write_text("d1\n")
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "sources": [
        {"kind": "labeled", "path": str(FIXTURES / "labeled.jsonl"), "exclude_articles": str(exclude)}]}))
    with pytest.raises(ConfigError, match=r"sources\[0\]: expected article ids for exclude_articles to match, "
                                          r"found none \(no article_column\); set article_column"):
        load_data_config(path)


def test_checkpoints_carry_every_random_generator(tiny_model_dir):
    from trainer.config import TrainingConfig, TransformerModel
    from trainer.models.transformer import TransformerBackend

    backend = TransformerBackend.from_config(TransformerModel(pretrained=str(tiny_model_dir)),
                                             TrainingConfig(precision="fp32"))
    state = backend.training_loop(["Shares rose."] * 4, ["verified"] * 4).state_dict()
    assert {"torch_rng", "cuda_rng", "loop"} <= set(state) and "numpy_rng" in state["loop"]
    import torch

    assert (state["cuda_rng"] is None) == (not torch.cuda.is_available())


def test_adjusted_shares_recover_the_true_shares_where_raw_counts_miss():
    from trainer.metrics import adjusted_shares, share_intervals

    rng = np.random.default_rng(0)
    rates = np.array([[0.85, 0.10, 0.05], [0.10, 0.85, 0.05], [0.05, 0.05, 0.90]])  # known error rates
    gold = rng.choice(3, size=20000, p=[0.55, 0.42, 0.03])  # a rare third label, as in real news
    predicted = np.array([rng.choice(3, p=rates[g]) for g in gold])
    raw = np.bincount(predicted, minlength=3) / len(predicted)
    adjusted = adjusted_shares(predicted, rates)
    assert abs(raw[2] - 0.03) > 0.03  # classify-and-count more than doubles the rare label
    assert np.abs(adjusted - [0.55, 0.42, 0.03]).max() < 0.01
    shares = share_intervals(predicted[:2000], [f"a{i // 20}" for i in range(2000)], rates, n_resamples=200)
    low, high = shares["adjusted"]["unverified"]["ci"]
    assert low <= shares["adjusted"]["unverified"]["share"] <= high and set(shares) == {"raw", "adjusted"}


def test_reports_carry_raw_adjusted_and_gold_shares(trained_sklearn, tmp_path):
    project, trained = trained_sklearn
    result = evaluate(trained.model_dir, split="test", output=tmp_path / "r", tracking=TrackingConfig(enabled=False),
                      n_resamples=50)
    shares = result.report["shares"]
    assert set(shares) >= {"raw", "adjusted", "gold"} and shares["adjusted_with"]
    assert sum(v["share"] for v in shares["raw"].values()) == pytest.approx(1.0)
    assert sum(v["share"] for v in shares["adjusted"].values()) == pytest.approx(1.0, abs=1e-3)
    gold_counts = [result.metrics["per_label"][label]["support"] / result.metrics["n"] for label in shares["gold"]]
    assert list(shares["gold"].values()) == pytest.approx(gold_counts)
