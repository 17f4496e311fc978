"""A study's shares: `trainer audit` (a random sample to label), `trainer summarize --audit` (PPI beside the
audit alone and classify-and-count), quantification without an audit, and the intervals' coverage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainer.cli import main
from trainer.errors import ConfigError, DataError
from trainer.estimators import fit_quantifier, hand_share, ppi_share, simulate
from trainer.labels import LABELS
from trainer.outputs.summary_report import percent
from trainer.workflows.audit import AUDIT_MANIFEST, audit
from trainer.workflows.summary import SUMMARY_FILES, summarize

SHARES = {"P": (0.30, 0.65, 0.05), "Q": (0.55, 0.40, 0.05)}  # each publisher's true label shares


def _model(gold: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Probabilities of a model that is right 75% of the time and never says unverified when it is wrong."""
    probabilities = np.full((len(gold), 3), 0.1)
    right = rng.random(len(gold)) < 0.75
    guess = np.where(right, gold, np.where(gold == 0, 1, 0))
    probabilities[np.arange(len(gold)), guess] = 0.8
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def _tag_output(folder: Path, seed: int = 3, per_article: int = 20, articles: int = 60) -> tuple[Path, pd.DataFrame]:
    """A tag output (the tables `trainer tag` writes) of two publishers with known gold labels."""
    rng = np.random.default_rng(seed)
    sentences, rows = [], []
    for a in range(articles):
        publisher = "P" if a % 2 else "Q"
        gold = rng.choice(3, per_article, p=SHARES[publisher])
        probabilities = _model(gold, rng)
        for i in range(per_article):
            sentences.append({"article_id": f"{publisher}{a}", "paragraph_index": i // 4, "sentence_index": i,
                              "start": i * 10, "end": i * 10 + 9, "text": f"Sentence {i} of {publisher}{a}.",
                              "label": LABELS[int(probabilities[i].argmax())],
                              **{f"p_{k}": float(probabilities[i, j]) for j, k in enumerate(LABELS)},
                              "gold": LABELS[gold[i]]})
        counts = np.bincount(probabilities.argmax(axis=1), minlength=3)
        rows.append({"article_id": f"{publisher}{a}", "n_sentences": per_article,
                     **{f"n_{k}": int(counts[j]) for j, k in enumerate(LABELS)}, "publisher": publisher})
    frame = pd.DataFrame(sentences)
    for table, data in (("sentences", frame.drop(columns=["gold"])), ("articles", pd.DataFrame(rows))):
        (folder / table).mkdir(parents=True)
        data.to_parquet(folder / table / "part-00000.parquet")
    (folder / "manifest.json").write_text(json.dumps({"model": "fixture-model", "run_id": None, "parts": []}))
    return folder, frame


def _label(tasks_csv: Path, gold: pd.DataFrame, out: Path) -> Path:
    """The audit's CSV with the label column filled in from the gold labels."""
    truth = {(r.article_id, r.sentence_index): r.gold for r in gold.itertuples()}
    with tasks_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = truth[(row["article_id"], int(row["sentence_index"]))]
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


# ---------------------------------------------------------------- the intervals


def test_ppi_and_hand_intervals_cover_the_truth_and_ppi_is_narrower():
    rng = np.random.default_rng(0)
    gold = rng.choice(3, 3000, p=(0.35, 0.6, 0.05))
    results = {c.label: c for c in simulate(gold, _model(gold, rng), audit=200, draws=80, seed=1)}
    for label, c in results.items():
        assert c.coverage["ppi"] >= 0.87 and c.coverage["hand"] >= 0.87, (label, c.coverage)
        assert c.zero_printed == 0
    # the model's errors bias its own counts: classify-and-count misses the truth
    assert results["unverified"].coverage["cc"] == 0 and results["verified"].coverage["cc"] == 0
    for label in ("verified", "attributed"):
        assert results[label].width["ppi"] < 0.9 * results[label].width["hand"]


def test_an_audit_that_contains_a_label_never_prints_zero():
    y = np.zeros(200)
    y[0] = 1
    floor = 1 / 5000
    estimates = [hand_share(y, floor=floor), ppi_share(y, np.full(200, 0.2), np.full(5000, 0.001), floor=floor)]
    for e in estimates:
        assert e.share > 0 and e.low >= floor and percent(e.share) != "0.0%" and percent(e.low) != "0.0%"
    assert percent(0.0004) == "0.04%"


def test_pacc_corrects_the_models_errors_where_counting_does_not():
    rng = np.random.default_rng(5)
    labeled = rng.choice(3, 2000, p=(0.4, 0.5, 0.1))
    quantifier = fit_quantifier("pacc", _model(labeled, rng), labeled)
    corpus = rng.choice(3, 4000, p=(0.2, 0.7, 0.1))  # another mix of labels, the same model errors
    probabilities = _model(corpus, rng)
    counted = np.bincount(probabilities.argmax(axis=1), minlength=3) / len(corpus)
    estimated = quantifier.predict(probabilities)
    truth = np.bincount(corpus, minlength=3) / len(corpus)
    assert np.abs(estimated - truth).max() < 0.03 < np.abs(counted - truth).max()


# ---------------------------------------------------------------- audit, label, summarize


def test_audit_draws_a_seeded_stratified_sample_with_its_design(tmp_path):
    tagged, _ = _tag_output(tmp_path / "tagged")
    first = audit(tagged, tmp_path / "a1", by="publisher", per_stratum=40, seed=7)
    again = audit(tagged, tmp_path / "a2", by="publisher", per_stratum=40, seed=7)
    assert (tmp_path / "a1" / "tasks.csv").read_bytes() == (tmp_path / "a2" / "tasks.csv").read_bytes()
    design = json.loads((tmp_path / "a1" / AUDIT_MANIFEST).read_text())
    assert design["design"] == "stratified" and first.sentences == again.sentences == 80
    assert {s["stratum"]: s["inclusion_probability"] for s in design["strata"]} == {"P": 40 / 600, "Q": 40 / 600}
    tasks = json.loads((tmp_path / "a1" / "tasks.json").read_text())
    assert len(tasks) == 80 and all("predictions" not in t for t in tasks)  # no model guess shown
    marked = tasks[0]["data"]["paragraph_html"]
    assert f"<mark><b>{tasks[0]['data']['text']}</b></mark>" in marked
    assert "$paragraph_html" in (tmp_path / "a1" / "labeling-config.xml").read_text()
    with pytest.raises(ConfigError, match="expected either --n"):
        audit(tagged, tmp_path / "a3", n=10, by="publisher", per_stratum=5)


def test_summarize_with_an_audit_names_its_estimators_and_counts_the_audit(tmp_path):
    tagged, gold = _tag_output(tmp_path / "tagged")
    audit(tagged, tmp_path / "audit", n=300, seed=2)
    labels = _label(tmp_path / "audit" / "tasks.csv", gold, tmp_path / "labels.csv")
    summary = summarize(tagged, "publisher", audit=labels, n_resamples=100)
    assert summary.primary == "ppi" and summary.audit["sentences"] == 300 and not summary.audit["weighted"]
    rows = {(r["group"], r["label"]): r for r in summary.rows}
    assert rows["P", "verified"]["audited"] + rows["Q", "verified"]["audited"] == 300
    for group in ("P", "Q"):
        truth = (gold[gold["article_id"].str.startswith(group)]["gold"] == "verified").mean()
        row = rows[group, "verified"]
        assert row["ppi_low"] <= truth <= row["ppi_high"] and row["hand_low"] <= truth <= row["hand_high"]
        assert row["ppi_high"] - row["ppi_low"] < row["hand_high"] - row["hand_low"]
    report = tagged / "summary-publisher"
    assert all((report / name).is_file() for name in SUMMARY_FILES)
    assert "prediction-powered inference" in (report / "summary.html").read_text()
    table = pd.read_csv(report / "summary.csv")
    assert set(table["primary_estimator"]) == {"ppi"} and {"ppi_share", "hand_share", "cc_share"} <= set(table)
    assert "ppi" in json.loads((report / "summary.json").read_text())["estimators"]
    assert pd.read_excel(report / "summary.xlsx", sheet_name="shares").shape[0] == len(summary.rows)


def test_a_stratified_audit_is_weighted_by_its_inclusion_probabilities(tmp_path):
    tagged, gold = _tag_output(tmp_path / "tagged", articles=80)
    # an uneven design: P's sentences are five times as likely to be audited as Q's
    frame = pd.read_parquet(tagged / "articles")
    frame.loc[frame["publisher"] == "Q", "publisher"] = ["Q"] * 10 + ["R"] * 30
    frame.to_parquet(tagged / "articles" / "part-00000.parquet")
    audit(tagged, tmp_path / "audit", by="publisher", per_stratum=100, seed=4)
    labels = _label(tmp_path / "audit" / "tasks.csv", gold, tmp_path / "labels.csv")
    summary = summarize(tagged, "publisher", audit=labels, n_resamples=100)
    assert summary.audit["weighted"] and "stratified" in summary.audit["design"]
    overall = {r["label"]: r for r in summary.rows if r["group"] == "(all)"}
    truth = (gold["gold"] == "verified").mean()
    assert overall["verified"]["ppi_low"] <= truth <= overall["verified"]["ppi_high"]
    assert overall["verified"]["hand_low"] <= truth <= overall["verified"]["hand_high"]


def test_a_label_studio_export_of_the_audit_is_read_back(tmp_path):
    tagged, gold = _tag_output(tmp_path / "tagged")
    audit(tagged, tmp_path / "audit", n=120, seed=2)
    truth = {(r.article_id, r.sentence_index): r.gold for r in gold.itertuples()}
    tasks = json.loads((tmp_path / "audit" / "tasks.json").read_text())
    for number, task in enumerate(tasks):
        meta = task["data"]["meta"]
        choice = truth[(meta["article"], meta["sentence_index"])]
        task |= {"id": number, "annotations": [{"completed_by": 1, "result": [
            {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]}]}
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    summary = summarize(tagged, "publisher", audit=export, n_resamples=100)
    assert summary.audit["sentences"] == 120 and sum(summary.audit["labels"].values()) == 120


def test_summarize_tracks_the_summary_with_the_audit_as_dataset_input(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tagged, gold = _tag_output(tmp_path / "tagged")
    audit(tagged, tmp_path / "audit", n=100, seed=2)
    labels = _label(tmp_path / "audit" / "tasks.csv", gold, tmp_path / "labels.csv")
    summary = summarize(tagged, "publisher", audit=labels, n_resamples=50, track=True)
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(summary.run_id)
    assert run.data.params["primary_estimator"] == "ppi"
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["audit:labels.csv"]
    assert "ppi_share/P/verified" in run.data.metrics


def test_command_line_errors_are_one_line(tmp_path, capsys):
    tagged, _ = _tag_output(tmp_path / "tagged")
    bad = tmp_path / "bad.csv"
    bad.write_text("article_id,start,end,label\nP1,0,9,maybe\n")
    assert main(["summarize", str(tagged), "--by", "publisher", "--audit", str(bad)]) == 2
    assert "expected labels in" in capsys.readouterr().err
    missing = tmp_path / "missing.csv"
    missing.write_text("article_id,start,end,label\nZ9,0,9,verified\n")
    with pytest.raises(DataError, match="expected every audited sentence in the tag output"):
        summarize(tagged, "publisher", audit=missing)
    assert main(["audit", str(tagged), "--output", str(tmp_path / "a"), "--per-stratum", "3"]) == 2
    assert "--per-stratum: expected --by" in capsys.readouterr().err
    assert main(["audit", str(tagged), "--output", str(tmp_path / "b"), "--n", "12"]) == 0
    assert "12 sentences of 1200 to label" in capsys.readouterr().out


def test_a_quantifier_that_collapses_a_label_to_zero_is_flagged():
    from trainer.workflows.summary import collapsed

    rows = [{"group": "P", "label": label, "pacc_high": 0.0 if label == "unverified" else 0.5,
             "cc_share": 0.01} for label in LABELS]
    (warning,) = collapsed(rows, "pacc")
    assert "pacc puts unverified at 0 [0, 0] in 1 group(s) (P)" in warning and "assumption does not hold" in warning


def test_a_label_the_model_never_gives_but_the_audit_finds_is_not_shown_as_absent(tmp_path):
    tagged, gold = _tag_output(tmp_path / "tagged")
    articles = pd.read_parquet(tagged / "articles")  # a model that never says unverified
    articles["n_verified"] += articles["n_unverified"]
    articles["n_unverified"] = 0
    articles.to_parquet(tagged / "articles" / "part-00000.parquet")
    audit(tagged, tmp_path / "audit", n=300, seed=2)
    labels = _label(tmp_path / "audit" / "tasks.csv", gold, tmp_path / "labels.csv")
    summary = summarize(tagged, "publisher", audit=labels, n_resamples=50)
    rows = {(r["group"], r["label"]): r for r in summary.rows}
    assert rows["(all)", "unverified"]["audited_with_label"] > 0 and rows["(all)", "unverified"]["cc_share"] == 0
    assert rows["(all)", "unverified"]["ppi_low"] > 0 and rows["(all)", "unverified"]["hand_low"] > 0
    assert any("Classify-and-count is 0 where the audit finds the label (unverified in" in n for n in summary.notes)
