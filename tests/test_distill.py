"""Distillation: a teacher's probabilities over unlabeled articles, keyed by offsets (kind: teacher), the
soft loss the student learns them with, and `trainer distill` end to end on the fixture corpus."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from trainer.config import ExperimentConfig, load_config
from trainer.data.build import TEACHER_COLUMN, build_dataset, dedup_key
from trainer.data.teacher import COLUMNS, read_meta
from trainer.errors import ConfigError
from trainer.labels import LABELS
from trainer.models.loop import soft_targets
from trainer.workflows.distill import distill
from trainer.workflows.recipe import teacher_targets

from .conftest import TINY_TRAINING, tiny_model_section

UNLABELED = {
    "mayor": "The mayor said the bridge would reopen in May.\n\nThe river rose two feet overnight.\n\n"
             "Officials reportedly considered closing the road.\n",
    "war": "Rebels captured the town, according to state media.\n\nThe claim could not be independently "
           "verified.\n\nThe town lies 40 km north of the capital.\n",
    "held": "This article is held out like the dev set's.\n\nIt must never reach the pool.\n",
}


@pytest.fixture()
def student_config(project, tiny_model_dir, tmp_path):
    """An experiment config whose data adds a teacher source over three unlabeled articles (one excluded)."""
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    for name, text in UNLABELED.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    (tmp_path / "heldout.txt").write_text("held\n", encoding="utf-8")
    data = project.data_config(name="with-teacher")
    data["sources"].append({"kind": "teacher", "path": str(tmp_path / "probs" / "teacher.parquet"),
                            "articles": str(folder), "exclude_articles": str(tmp_path / "heldout.txt"),
                            "max_sentences": 5, "seed": 1})
    project.write("data/with-teacher.yaml", data)
    path = project.experiment("student", tiny_model_section(tiny_model_dir), {**TINY_TRAINING, "epochs": 1},
                              data=str(project.root / "configs" / "data" / "with-teacher.yaml"))
    return load_config(path)


def test_soft_loss_on_one_hot_targets_equals_weighted_cross_entropy():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 1, 0, 2])
    weight = torch.tensor([0.7, 0.9, 4.0])
    soft = soft_targets(y, np.full((6, 3), np.nan), weight, 1.0, torch.device("cpu"))
    expected = torch.nn.CrossEntropyLoss(weight=weight)(logits, y)
    assert torch.allclose(soft.loss(logits, torch.arange(6)), expected)


def test_teacher_rows_learn_the_probabilities_with_their_weight():
    y = torch.tensor([0, 2])
    targets = np.array([[np.nan] * 3, [0.2, 0.3, 0.5]])
    soft = soft_targets(y, targets, torch.tensor([1.0, 1.0, 3.0]), 0.5, torch.device("cpu"))
    assert torch.allclose(soft.distributions[1], torch.tensor([0.2, 0.3, 0.5]))
    assert soft.weights.tolist() == pytest.approx([1.0, 0.5 * (0.2 + 0.3 + 1.5)])
    plain = soft_targets(y, targets, torch.tensor([1.0, 1.0, 3.0]), 0.5, torch.device("cpu"),
                         teacher_class_weights=False)  # the gold row keeps its class weight, the teacher's not
    assert plain.weights.tolist() == pytest.approx([1.0, 0.5])
    soft = soft_targets(y, targets, None, 1.0, torch.device("cpu"), temperature=2.0)
    expected = torch.tensor([0.2, 0.3, 0.5]).sqrt()
    assert torch.allclose(soft.distributions[1], expected / expected.sum())
    assert soft.distributions[0].tolist() == [1.0, 0.0, 0.0]  # gold stays one-hot


def test_distill_writes_offsets_and_probabilities_without_text(student_config: ExperimentConfig, trained_sklearn):
    result = distill(student_config, trained_sklearn[1].model_dir, train_student=False, progress=False)
    (written,) = result.files
    frame = pd.read_parquet(written.path)
    assert list(frame.columns) == COLUMNS and "text" not in frame.columns  # no text in the committed file
    assert written.counts["excluded_articles"] == 1 and "held" not in set(frame["article"])
    assert written.counts["sentences"] == 6 and written.counts["drawn"] == len(frame) == 5
    assert np.allclose(frame[[f"p_{label}" for label in LABELS]].sum(axis=1), 1, atol=1e-4)
    assert read_meta(written.path)["teacher"] == trained_sklearn[1].model_dir.name
    source = student_config.data.sources[-1]
    text = (source.articles / "mayor.txt").read_text(encoding="utf-8")
    first = frame[frame["article"] == "mayor"].sort_values("start").iloc[0]
    assert text[first.start:first.end] == "The mayor said the bridge would reopen in May."


def test_several_teachers_give_the_mean_of_their_probabilities(student_config: ExperimentConfig, trained_sklearn,
                                                              trained_tiny):
    columns = [f"p_{label}" for label in LABELS]
    first, second = trained_sklearn[1].model_dir, trained_tiny[1].model_dir
    path = student_config.data.sources[-1].path
    alone = {}
    for teacher in (second, first):  # the first teacher's file stays on disk for the ensemble to reuse
        distill(student_config, teacher, train_student=False, progress=False, force=True)
        alone[teacher] = pd.read_parquet(path).set_index(["article", "start"])[columns]
    (written,) = distill(student_config, [first, second], train_student=False, progress=False).files
    assert written.reused_members == [first.name]  # only the new member labeled the pool
    both = pd.read_parquet(path).set_index(["article", "start"])[columns]
    assert np.allclose(both, (alone[first] + alone[second].loc[both.index]) / 2, atol=2e-5)
    assert not np.allclose(alone[first], alone[second].loc[alone[first].index], atol=1e-3)  # two real teachers
    assert read_meta(path)["teacher"] == f"{first.name}+{second.name}"
    again = distill(student_config, [second, first], train_student=False, progress=False).files[0]
    assert again.reused  # the same ensemble (in any order) and draw: kept


def test_a_member_whose_article_changed_is_run_again(student_config: ExperimentConfig, trained_sklearn,
                                                     trained_tiny):
    first, second = trained_sklearn[1].model_dir, trained_tiny[1].model_dir
    distill(student_config, first, train_student=False, progress=False)
    article = student_config.data.sources[-1].articles / "mayor.txt"
    article.write_text(article.read_text(encoding="utf-8").replace("bridge", "tunnel"), encoding="utf-8")  # same offsets
    (written,) = distill(student_config, [first, second], train_student=False, progress=False).files
    assert written.reused_members == []  # the stored row is another sentence now: never averaged in


def test_a_teacher_named_twice_is_one_line(student_config: ExperimentConfig, trained_sklearn):
    teacher = trained_sklearn[1].model_dir
    with pytest.raises(ConfigError, match="expected each teacher once"):
        distill(student_config, [teacher, teacher], train_student=False, progress=False)


def test_the_dataset_reads_the_teacher_back_into_train_only(student_config: ExperimentConfig, trained_sklearn):
    distill(student_config, trained_sklearn[1].model_dir, train_student=False, progress=False)
    built = build_dataset(student_config.data, progress=False)
    train = built.dataset["train"]
    rows = [i for i, origin in enumerate(train["label_source"]) if origin == "teacher"]
    assert len(rows) == 5
    targets = teacher_targets(train)
    assert np.isnan(targets[[i for i in range(len(train)) if i not in rows]]).all()
    names = train.features["label"].names
    for i in rows:  # its label is the teacher's most probable, and the row carries the probabilities
        assert names[train["label"][i]] == LABELS[int(np.argmax(targets[i]))]
    for name in ("validation", "test"):
        assert "teacher" not in built.dataset[name]["label_source"]
        assert all(len(row) == 0 for row in built.dataset[name][TEACHER_COLUMN])
    texts = {dedup_key(t) for t in train["text"]}
    assert dedup_key("The claim could not be independently verified.") in texts


def test_a_changed_article_drops_its_sentences_and_counts_them(student_config: ExperimentConfig, trained_sklearn):
    distill(student_config, trained_sklearn[1].model_dir, train_student=False, progress=False)
    source = student_config.data.sources[-1]
    (source.articles / "war.txt").write_text("Something else entirely now stands here.\n\n" * 3, encoding="utf-8")
    built = build_dataset(student_config.data, progress=False)
    drawn = pd.read_parquet(source.path)
    assert built.card["skipped"]["teacher_sentence_not_at_its_offsets"] == int((drawn["article"] == "war").sum())


def test_the_student_trains_on_the_teacher_and_the_gold(student_config: ExperimentConfig, trained_sklearn):
    result = distill(student_config, trained_sklearn[1].model_dir, progress=False)
    assert result.student.model_dir.is_dir()
    assert set(result.student.metrics["test"]["per_label"]) >= set(LABELS)
    card = (result.student.model_dir / "README.md").read_text(encoding="utf-8")
    assert f"teacher `{trained_sklearn[1].model_dir.name}`" in card and "on 5 sentences of 2 articles" in card


def test_distill_without_a_teacher_source_is_one_line(project, trained_sklearn):
    config = project.experiment("plain", {"backend": "sklearn"})
    run = subprocess.run([sys.executable, "-m", "trainer.cli", "distill", "--config", str(config), "--teacher",
                          str(trained_sklearn[1].model_dir), "--no-train"], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "expected at least one source of kind: teacher" in run.stderr.strip().splitlines()[-1]
