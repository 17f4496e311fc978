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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import ExperimentConfig, TeacherSource
from trainer.data.teacher import PROBABILITY_COLUMNS, PoolSentence, corpus_name, digest, draw_pool, read_frame
from trainer.data.teacher import write_probabilities
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
    reused_members: list[str] = field(default_factory=list)  # ensemble members whose stored probabilities were kept


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


def ensemble_name(teachers: Sequence[Path]) -> str:
    """How the probabilities files name their teacher: a folder's name, or the members' sorted and joined by
    '+' (the mean does not depend on their order, so neither does the name)."""
    return "+".join(sorted(t.name for t in teachers))


def draw_settings(source: TeacherSource, teachers: Sequence[Path]) -> dict[str, Any]:
    """What decides a probabilities file's rows: the teacher(s), the articles, the excluded ones, the draw."""
    return {"teacher": ensemble_name(teachers), "articles": corpus_name(source.articles), "seed": source.seed,
            "max_sentences": source.max_sentences,
            "exclude_articles": source.exclude_articles.name if source.exclude_articles else None}


def up_to_date(source: TeacherSource, teachers: Sequence[Path]) -> TeacherFile | None:
    """The source's file, if the same teacher(s) wrote it with the same draw (then it is not labeled again)."""
    if not source.path.is_file():
        return None
    meta = read_teacher_meta(source.path)
    if meta.get("draw") != draw_settings(source, teachers):
        return None
    return TeacherFile(source.path, meta.get("counts", {}), meta.get("shares", {}), 0.0, reused=True)


def stored_probabilities(source: TeacherSource, teacher: Path, pool: list[PoolSentence]) -> np.ndarray | None:
    """One ensemble member's probabilities for `pool`, read from the source's file when that member alone wrote
    it with the same draw (an ensemble of a teacher already run labels only the new members); else None."""
    if up_to_date(source, [teacher]) is None:
        return None
    frame = read_frame(source, ["article", "start", "end", "digest", *PROBABILITY_COLUMNS])
    stored = {(a, int(s), int(e), d): i for i, (a, s, e, d) in enumerate(zip(
        frame["article"], frame["start"], frame["end"], frame["digest"], strict=True))}
    # the digest too: an article changed under the same offsets is a new sentence, labeled again
    rows = [stored.get((p.article, p.sentence.start, p.sentence.end, digest(p.sentence.text))) for p in pool]
    if any(row is None for row in rows):
        return None
    return frame[PROBABILITY_COLUMNS].to_numpy(dtype=np.float32)[rows]


def teacher_probabilities(texts: list[str], classifier: Classifier, desc: str, progress: bool) -> np.ndarray:
    """One teacher's probabilities for `texts`, one row per text in LABELS order."""
    rows = []
    predictions = classifier.iter_predict(texts, chunk_size=classifier.progress_chunk())
    for prediction in bar(predictions, total=len(texts), desc=desc, unit="sentence", disable=not progress):
        rows.append([prediction.probabilities[label] for label in LABELS])
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(LABELS))


def label_pool(source: TeacherSource, teachers: Sequence[Path], load: Callable[[Path], Classifier],
               progress: bool = True, force: bool = False) -> TeacherFile:
    """Draw the source's sentences, have the teacher label them (several teachers: the mean of their
    probabilities, a member's stored ones reused unless `force`), and write its probabilities file. `load`
    gives a teacher's classifier, loaded once."""
    started = time.perf_counter()
    pool, counts = draw_pool(source, progress)
    log.info("%s: %d of %d sentences drawn from %d articles", source.articles, counts["drawn"], counts["sentences"],
             counts["articles"])
    texts = [p.sentence.text for p in pool]
    members, reused = [], []
    for teacher in teachers:
        stored = None if force or len(teachers) == 1 else stored_probabilities(source, teacher, pool)
        if stored is not None:
            reused.append(teacher.name)
            members.append(stored)
            continue
        desc = f"{teacher.name} on {corpus_name(source.articles)}"
        members.append(teacher_probabilities(texts, load(teacher), desc, progress))
    probabilities = np.mean(members, axis=0) if texts else np.zeros((0, len(LABELS)), dtype=np.float32)
    predicted = probabilities.argmax(axis=1) if len(texts) else np.array([], dtype=int)
    shares = {label: float(np.mean(predicted == i)) if len(texts) else 0.0 for i, label in enumerate(LABELS)}
    bases = dict.fromkeys(Path(str(read_meta(t).get("base_model", ""))).name for t in teachers)
    write_probabilities(source.path, pool, probabilities, {
        "teacher": ensemble_name(teachers), "teacher_base_model": "+".join(bases),
        "articles": corpus_name(source.articles), "seed": source.seed, "counts": counts, "shares": shares,
        "draw": draw_settings(source, teachers),
    })
    return TeacherFile(source.path, counts, shares, time.perf_counter() - started, reused_members=reused)


def check_teachers(teachers: Sequence[Path]) -> None:
    """A ConfigError unless every teacher is a trained model folder, each named once."""
    for teacher in teachers:
        if not (teacher / MODEL_META).is_file():
            raise ConfigError(f"--teacher: expected a trained model folder (with trainer_model.json), found "
                              f"{'nothing' if not teacher.exists() else 'a folder without it'} at {teacher}; "
                              "train one first (trainer train --config configs/mpnet-news-outlets.yaml)")
    names = [t.name for t in teachers]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--teacher: expected each teacher once (an ensemble averages distinct models), found "
                          f"{', '.join(twice)} more than once; name each model folder once")


def distill(config: ExperimentConfig, teacher: Path | Sequence[Path], train_student: bool = True,
            overwrite: bool = False, progress: bool = True, force: bool = False) -> DistillResult:
    """Write the teacher's probabilities for every teacher source of `config` (a file that the same teacher wrote
    with the same draw is kept, unless `force`), then train the student. Several teachers: an ensemble, whose
    probabilities are the mean of theirs."""
    from trainer.workflows.train import train

    teachers = [teacher] if isinstance(teacher, Path) else list(teacher)
    check_teachers(teachers)
    result = DistillResult()
    loaded: dict[Path, Classifier] = {}  # each teacher loaded once, and only if a source needs it

    def load(path: Path) -> Classifier:
        if path not in loaded:
            loaded[path] = load_classifier(path)
        return loaded[path]

    for source in teacher_sources(config):
        kept = None if force else up_to_date(source, teachers)
        result.files.append(kept or label_pool(source, teachers, load, progress, force))
    if train_student:
        result.student = train(config, overwrite=overwrite)
    return result
