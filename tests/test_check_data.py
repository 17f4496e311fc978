"""Dedup across splits and `check-data` messages."""

from __future__ import annotations

import json

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
