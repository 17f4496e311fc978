"""Dedup across splits and `check-data` messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainer.cli import main
from trainer.config import DataConfig
from trainer.data.build import build_dataset, dedup_key
from trainer.data.check import check_dataset


def test_dedup_key_ignores_case_punctuation_spacing():
    assert dedup_key('"We will win," he said.') == dedup_key("we will WIN -- he said")


def test_duplicates_never_cross_splits(project):
    # The same sentence (with other punctuation and case) in every article: it may stay in one split only.
    for path in sorted((project.root / "corpus/articles").glob("*.txt")):
        path.write_text(path.read_text() + "\nThe storm is over, officials said.\n")
    labels = project.root / "corpus/labels.jsonl"
    extra = [json.dumps({"article": p.stem, "sentence": "The storm is over, officials said.", "label": "attributed"})
             for p in sorted((project.root / "corpus/articles").glob("*.txt"))]
    labels.write_text(labels.read_text() + "\n".join(extra) + "\n")
    built = build_dataset(DataConfig.model_validate(project.data_config()), progress=False)
    keys = {name: {dedup_key(t) for t in split["text"]} for name, split in built.dataset.items()}
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    dropped = built.card["duplicates_dropped_from_split"]
    # every validation and test article carried one copy, and each copy was dropped
    assert dropped["validation"] == len(set(built.dataset["validation"]["article"]))
    assert dropped["test"] == len(set(built.dataset["test"]["article"]))
    assert not any("duplicate" in p.message for p in check_dataset(built, 1))


def test_check_data_reports_missing_and_rare_labels(project, capsys):
    labels = project.root / "corpus/labels.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    for row in rows:  # no unverified anywhere
        if row["label"] == "unverified":
            row["label"] = "verified"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = project.write("data/check.yaml", {**project.data_config(), "min_examples_per_label": 10})
    assert main(["-q", "check-data", "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error: train: no 'unverified' examples; its F1 cannot be measured or learned" in out
    assert "warning: test: only" in out and "(fewer than 10)" in out
    assert "errors," in out.splitlines()[-1]


def test_check_data_clean_dataset_exits_zero(project, capsys):
    path = project.write("data/ok.yaml", {**project.data_config(), "min_examples_per_label": 1})
    assert main(["-q", "check-data", "--config", str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith("0 errors, 0 warnings")


def test_label_issues_find_injected_flips_and_are_counted_in_the_card(project, tmp_path):
    """The finder on the fixture corpus with known flips: most flips rank near the top."""
    import csv

    from trainer.workflows import label_issues
    from trainer.config import load_data_config
    from trainer.data.build import build_dataset

    built = build_dataset(load_data_config(project.write("data/fixture.yaml", project.data_config())), progress=False)
    check = label_issues.flip_check(built, rate=0.1, folds=4)
    assert check["flipped"] == round(0.1 * check["sentences"]) and check["found"] >= 1
    best = max(check["at_k"].values(), key=lambda f: f["recall"])
    assert best["recall"] >= 0.5  # a TF-IDF model on 72 sentences still finds half of the flips
    rows = label_issues.label_issues(built, tmp_path / "issues", folds=4)
    written = list(csv.DictReader((tmp_path / "issues" / label_issues.ISSUES_CSV).open()))
    assert [int(r["rank"]) for r in written] == list(range(1, len(rows) + 1))
    assert all(r["suggested"] != r["label"] or float(r["label_probability"]) < 0.5 for r in written)
    tasks = json.loads((tmp_path / "issues" / label_issues.ISSUES_TASKS).read_text())
    assert [t["data"]["text"] for t in tasks] == [r["text"] for r in written]
    card = json.loads((built.path / "card.json").read_text())
    assert sum(card["label_issues"]["per_source"].values()) == len(rows)
    assert "Suspected label issues" in (built.path / "README.md").read_text()


def test_flips_are_injected_as_asked():
    from trainer.workflows.label_issues import inject_flips, precision_recall_at

    labels = ["verified", "attributed", "unverified"] * 20
    noisy, flipped = inject_flips(labels, 0.1, seed=1)
    assert len(flipped) == 6 and all(noisy[i] != labels[i] for i in flipped)
    assert sum(a != b for a, b in zip(labels, noisy)) == 6
    at = precision_recall_at(np.array([flipped[0], 999, flipped[1]]), flipped, [1, 3])
    assert at[1] == {"precision": 1.0, "recall": 1 / 6} and at[3]["precision"] == pytest.approx(2 / 3)
