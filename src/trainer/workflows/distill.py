"""`trainer distill`: a teacher labels unlabeled news, and a student learns its probabilities.

For every `kind: teacher` source of the student's data config: split the source's articles into sentences
(the excluded articles left out), draw `max_sentences` of them (seeded), have the teacher give each its
probabilities, and write them keyed by article and offsets (`data/teacher.py`, no text). Then, unless told
not to, train the student with `train()`: its dataset reads the probabilities back from the file, so a
committed file lets anyone train the same student without the teacher (`make train`).

>>> result = distill(load_config("configs/default.yaml"), Path("models/mpnet-news-outlets"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import ExperimentConfig, TeacherSource
from trainer.data.teacher import corpus_name, draw_pool, write_probabilities
from trainer.data.teacher import read_meta as read_teacher_meta
from trainer.errors import ConfigError
from trainer.infra.progress import bar
from trainer.labels import LABELS
from trainer.outputs.model_folder import MODEL_META, read_meta
from trainer.workflows.predict import Classifier, load_classifier

log = logging.getLogger(__name__)


@dataclass
class TeacherFile:
    """One probabilities file written: where, how many sentences, and the teacher's label shares over them."""

    path: Path
    counts: dict[str, int]
    shares: dict[str, float]
    seconds: float
    reused: bool = False  # written before by the same teacher with the same draw, so not labeled again


@dataclass
class DistillResult:
    files: list[TeacherFile] = field(default_factory=list)
    student: Any = None  # the student's TrainResult, when it was trained


def teacher_sources(config: ExperimentConfig) -> list[TeacherSource]:
    """The `kind: teacher` sources of the config's data; a ConfigError when there is none."""
    sources = [s for s in config.data.sources if isinstance(s, TeacherSource)]
    if not sources:
        raise ConfigError(f"data config '{config.data.name}': expected at least one source of kind: teacher for the "
                          "teacher's probabilities, found none; add one per folder of unlabeled articles "
                          "(configs/data/distill.yaml shows how)")
    return sources


def draw_settings(source: TeacherSource, teacher: Path) -> dict[str, Any]:
    """What decides a probabilities file's rows: the teacher, the articles, the excluded ones, the draw."""
    return {"teacher": teacher.name, "articles": corpus_name(source.articles), "seed": source.seed,
            "max_sentences": source.max_sentences,
            "exclude_articles": source.exclude_articles.name if source.exclude_articles else None}


def up_to_date(source: TeacherSource, teacher: Path) -> TeacherFile | None:
    """The source's file, if the same teacher wrote it with the same draw (then it is not labeled again)."""
    if not source.path.is_file():
        return None
    meta = read_teacher_meta(source.path)
    if meta.get("draw") != draw_settings(source, teacher):
        return None
    return TeacherFile(source.path, meta.get("counts", {}), meta.get("shares", {}), 0.0, reused=True)


def label_pool(source: TeacherSource, teacher: Path, classifier: Classifier, progress: bool = True) -> TeacherFile:
    """Draw the source's sentences, have the teacher (`classifier`, loaded from `teacher`) label them, and write
    its probabilities file."""
    started = time.perf_counter()
    pool, counts = draw_pool(source, progress)
    log.info("%s: %d of %d sentences drawn from %d articles", source.articles, counts["drawn"], counts["sentences"],
             counts["articles"])
    texts = [p.sentence.text for p in pool]
    rows = []
    predictions = classifier.iter_predict(texts, chunk_size=classifier.progress_chunk())
    for prediction in bar(predictions, total=len(texts), desc=f"teacher on {corpus_name(source.articles)}",
                          unit="sentence", disable=not progress):
        rows.append([prediction.probabilities[label] for label in LABELS])
    probabilities = np.asarray(rows, dtype=np.float32).reshape(len(texts), len(LABELS))
    predicted = probabilities.argmax(axis=1) if len(texts) else np.array([], dtype=int)
    shares = {label: float(np.mean(predicted == i)) if len(texts) else 0.0 for i, label in enumerate(LABELS)}
    meta = read_meta(teacher)
    write_probabilities(source.path, pool, probabilities, {
        "teacher": teacher.name, "teacher_base_model": Path(str(meta.get("base_model", ""))).name,
        "articles": corpus_name(source.articles), "seed": source.seed, "counts": counts, "shares": shares,
        "draw": draw_settings(source, teacher),
    })
    return TeacherFile(source.path, counts, shares, time.perf_counter() - started)


def distill(config: ExperimentConfig, teacher: Path, train_student: bool = True, overwrite: bool = False,
            progress: bool = True, force: bool = False) -> DistillResult:
    """Write the teacher's probabilities for every teacher source of `config` (a file that the same teacher wrote
    with the same draw is kept, unless `force`), then train the student."""
    from trainer.workflows.train import train

    if not (teacher / MODEL_META).is_file():
        raise ConfigError(f"--teacher: expected a trained model folder (with trainer_model.json), found "
                          f"{'nothing' if not teacher.exists() else 'a folder without it'} at {teacher}; "
                          "train one first (trainer train --config configs/mpnet-news-outlets.yaml)")
    result = DistillResult()
    classifier = None  # the teacher, loaded once and only if a source needs labeling
    for source in teacher_sources(config):
        kept = None if force else up_to_date(source, teacher)
        if kept is None and classifier is None:
            classifier = load_classifier(teacher)
        result.files.append(kept or label_pool(source, teacher, classifier, progress))
    if train_student:
        result.student = train(config, overwrite=overwrite)
    return result
