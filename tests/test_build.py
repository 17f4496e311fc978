"""Dataset building: grouping by article, determinism, the card, the fingerprint, bad input."""

from __future__ import annotations

import json

import pytest

from trainer.cli import main
from trainer.config import DataConfig
from trainer.data.build import CARD_JSON, build_dataset, fingerprint
from trainer.errors import DataError


def _build(project, **changes):
    return build_dataset(DataConfig.model_validate(project.data_config(**changes)), progress=False)


def _articles(built):
    return {name: set(split["article"]) for name, split in built.dataset.items()}


def test_no_article_in_two_splits_and_every_label_counted(project):
    built = _build(project)
    articles = _articles(built)
    assert not articles["train"] & articles["validation"]
    assert not articles["train"] & articles["test"]
    assert not articles["validation"] & articles["test"]
    gold = [json.loads(line) for line in (project.root / "corpus/labels.jsonl").read_text().splitlines()]
    assert sum(len(split) for split in built.dataset.values()) == len(gold)
    card = built.card
    for name, split in built.dataset.items():
        assert sum(card["label_counts"][name].values()) == len(split)
    assert card["unlabeled_sentences"] == [] and card["unused_labels"] == []
    assert card["cleaning_removed"] == {"link_teaser": 2, "photo_credit": 2}


def test_examples_keep_article_index_and_label_source(project):
    row = _build(project).dataset["train"][0]
    assert row["article"] and row["sentence_index"] >= 0
    assert row["label_source"] == "gold"
    assert row["beat"]  # from the metadata file


def test_same_seed_same_splits_other_seed_differs(project, tmp_path):
    first = _articles(_build(project))
    again = _articles(_build(project, output_dir=str(tmp_path / "again")))
    assert first == again
    others = [_articles(_build(project, output_dir=str(tmp_path / f"s{seed}"), split={"seed": seed})) for seed in (1, 2, 5)]
    assert any(o != first for o in others)


def test_fingerprint_changes_with_input_and_setting(project):
    config = DataConfig.model_validate(project.data_config())
    base = fingerprint(config)
    assert fingerprint(DataConfig.model_validate(project.data_config(split={"seed": 4}))) != base
    article = project.root / "corpus/articles/a7-match.txt"
    article.write_text(article.read_text() + "\nOne more sentence was added.\n")
    assert fingerprint(config) != base


def test_rebuild_reuses_when_unchanged_and_reports_unlabeled(project):
    built = _build(project)
    mtime = (built.path / CARD_JSON).stat().st_mtime_ns
    assert (_build(project).path / CARD_JSON).stat().st_mtime_ns == mtime  # reused
    article = project.root / "corpus/articles/a7-match.txt"
    article.write_text(article.read_text() + "\nA sentence nobody labeled.\n")
    card = _build(project).card
    assert card["unlabeled_sentences"] == [
        {"article": "a7-match", "sentence_index": 9, "text": "A sentence nobody labeled."}
    ]


def test_card_markdown_written(project):
    built = _build(project)
    text = (built.path / "README.md").read_text()
    assert built.fingerprint in text and "| train |" in text


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: (root / "corpus/articles/a1-flood.txt").write_text("  \n"), r"a1-flood\.txt: article is empty"),
        (
            lambda root: (root / "corpus/articles/a1-flood.txt").write_bytes(b"Caf\xe9 owners said prices rose."),
            r"a1-flood\.txt: expected UTF-8 text, found an undecodable byte at offset 3",
        ),
        (
            lambda root: (root / "corpus/labels.jsonl").write_text(
                '{"article": "a1-flood", "sentence": "x", "label": "rumour"}\n'
            ),
            r"labels\.jsonl:1: labels \['rumour'\] are outside the scheme",
        ),
        (
            lambda root: (root / "corpus/labels.jsonl").write_text('{"article": "a1"}\nnot json\n'),
            r"labels\.jsonl:1: expected a 'sentence' column",
        ),
        (lambda root: (root / "corpus/labels.jsonl").write_text("not json\n"), r"labels\.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(project, setup, message):
    setup(project.root)
    with pytest.raises(DataError, match=message):
        _build(project)
    written = project.root / "processed"
    assert not written.exists() or [p.name for p in written.iterdir()] == [".locks"]  # only the build's lock


def test_build_data_cli(project, capsys):
    path = project.write("data/fixture.yaml", project.data_config())
    assert main(["-q", "build-data", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| test |" in out and "dataset:" in out
