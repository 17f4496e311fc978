"""Label Studio exports as a source kind (`kind: labelstudio`): labels by several annotators,
their agreement, and one label per sentence by a configured rule.

Reads Label Studio's JSON export (a list of tasks): each task's `data` (the sentence text, or an
article id and character offsets that point into the article file), and its `annotations`, each
with `completed_by`, `was_cancelled`, `ground_truth` and a `result` whose `value.choices` holds
the label. Agreement is Cohen's kappa for two annotators and Fleiss' kappa for more, overall and
per label (that label against the rest); it goes into the dataset card.

>>> cohen_kappa([["a", "a"], ["b", "b"], ["a", "b"], ["b", "b"]])
0.5
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data.sentences import ArticleLines, normalize
from trainer.data.sources import Example, SourceResult, article_path, parse_json, read_exclusions, read_text
from trainer.errors import DataError
from trainer.labels import LABELS

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- agreement


def cohen_kappa(pairs: Sequence[Sequence[str]]) -> float:
    """Cohen's kappa of two annotators over items both labeled: (observed - chance) / (1 - chance)."""
    if not pairs:
        return float("nan")
    a, b = zip(*pairs)
    observed = sum(x == y for x, y in pairs) / len(pairs)
    first, second = Counter(a), Counter(b)
    chance = sum(first[k] * second[k] for k in set(first) | set(second)) / len(pairs) ** 2
    return 1.0 if chance == 1 else (observed - chance) / (1 - chance)


def fleiss_kappa(items: Sequence[Sequence[str]], categories: Sequence[str]) -> float:
    """Fleiss' kappa over items that each have the same number (at least 2) of ratings."""
    if not items:
        return float("nan")
    raters = len(items[0])
    counts = np.array([[sum(r == c for r in item) for c in categories] for item in items], dtype=float)
    agreement = ((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))).mean()
    shares = counts.sum(axis=0) / counts.sum()
    chance = float((shares**2).sum())
    return 1.0 if chance == 1 else float((agreement - chance) / (1 - chance))


def agreement(labels_by_task: Sequence[dict[str, str]]) -> dict[str, Any]:
    """Kappa overall and per label over the tasks labeled by more than one annotator.

    Two annotators in all: Cohen's kappa over the tasks both labeled. More: Fleiss' kappa over the
    tasks with the most common number of ratings."""
    shared = [labels for labels in labels_by_task if len(labels) >= 2]
    annotators = sorted({a for labels in labels_by_task for a in labels})
    out: dict[str, Any] = {"annotators": annotators, "tasks_with_several": len(shared)}
    if not shared:
        return {**out, "method": None, "overall": None, "per_label": {}}
    if len(annotators) == 2:
        pairs = [[labels[annotators[0]], labels[annotators[1]]] for labels in shared]
        per_label = {label: cohen_kappa([[x == label, y == label] for x, y in pairs]) for label in LABELS}
        return {**out, "method": "cohen", "items": len(pairs), "overall": cohen_kappa(pairs), "per_label": per_label}
    size = Counter(len(labels) for labels in shared).most_common(1)[0][0]
    items = [list(labels.values()) for labels in shared if len(labels) == size]
    per_label = {label: fleiss_kappa([[r == label for r in item] for item in items], [True, False]) for label in LABELS}
    return {**out, "method": "fleiss", "items": len(items), "raters_per_item": size,
            "overall": fleiss_kappa(items, LABELS), "per_label": per_label}


# ---------------------------------------------------------------- the export


def _annotator(annotation: dict[str, Any], position: int) -> str:
    """Who made the annotation; one without `completed_by` is an annotator of its own (never one shared
    "None" that would merge everybody's labels and hide their disagreement)."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    if who is None or who == "":
        return f"unknown-{annotation.get('id', position)}"
    return str(who)


def _shaped(value: Any, kind: type, what: str, where: str) -> Any:
    """`value` if it is of `kind` (a missing value as an empty one), else a DataError naming the field."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        names = {dict: "an object", list: "a list"}
        raise DataError(f"{where}: expected {what} to be {names[kind]} (Label Studio's JSON export), found "
                        f"{type(value).__name__}; export the project again as JSON")
    return value


def _choice(annotation: dict[str, Any], control: str, where: str) -> str:
    for result in _shaped(annotation.get("result"), list, "result", where):
        result = _shaped(result, dict, "each result", where)
        if result.get("from_name") == control and result.get("type", "choices") == "choices":
            choices = _shaped(_shaped(result.get("value"), dict, "a result's value", where).get("choices"), list,
                              "value.choices", where)
            if len(choices) > 1:
                shown = ", ".join(f"{c!r:.40}" for c in choices[:3]) + (", ..." if len(choices) > 3 else "")
                raise DataError(f"{where}: expected one '{control}' choice in the annotation's result, found "
                                f"{len(choices):,} ({shown}); make the control single-choice and relabel the task")
            if len(choices) == 1:
                label = str(choices[0])
                if label not in LABELS:
                    raise DataError(f"{where}: expected a label in {list(LABELS)}, found {label!r}; "
                                    "fix the labeling config's choices or relabel the task")
                return label
    raise DataError(f"{where}: expected one '{control}' choice in the annotation's result, found none; "
                    "set `choices:` to the Choices control's name, or remove the empty annotation")


def _resolve(labels: dict[str, str], ground_truth: str | None, source: Any) -> tuple[str | None, str]:
    """One label for a task, and how it was reached."""
    counts = Counter(labels.values())
    if len(counts) == 1:
        return next(iter(counts)), "unanimous"
    if ground_truth is not None:
        return ground_truth, "ground_truth"
    if source.resolve == "adjudicator":
        answer = labels.get(source.adjudicator or "")
        return (answer, "adjudicated") if answer is not None else (None, "dropped_no_adjudication")
    if source.resolve == "majority":
        (top, n), *rest = counts.most_common()
        if not rest or rest[0][1] < n:
            return top, "majority"
        return None, "dropped_tie"
    return None, "dropped_disagreement"


def read_labelstudio(source: Any, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Examples from a Label Studio export, one per task that resolves to a label."""
    tasks = parse_json(read_text(source.path), str(source.path), "Label Studio's JSON export")
    if not isinstance(tasks, list):
        raise DataError(f"{source.path}: expected a list of tasks (Label Studio's JSON export), "
                        f"found a {type(tasks).__name__}")
    tasks, pooled = pool_same_sentence(tasks)
    articles: dict[str, str] = {}
    lines: dict[str, ArticleLines] = {}  # each article's lines, each split once, for the neighbours of its tasks
    excluded = read_exclusions(source.exclude_articles)
    left_out: set[str] = set()
    result = SourceResult()
    labels_by_task: list[dict[str, str]] = []
    how: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    for position, task in enumerate(tasks):
        task = _shaped(task, dict, "each task", f"{source.path}: task at position {position}")
        where = f"{source.path}: task {task.get('id', position)}"
        data = _shaped(task.get("data"), dict, "data", where)
        meta = _shaped(data.get("meta"), dict, "data.meta", where)
        article = str(meta.get("article", data.get("article", f"task{task.get('id', position)}")))
        if article in excluded:
            left_out.add(article)
            continue
        text = _task_text(data, meta, article, source, articles, where)
        labels: dict[str, str] = {}
        ground_truth = None
        for number, annotation in enumerate(_shaped(task.get("annotations"), list, "annotations", where)):
            annotation = _shaped(annotation, dict, "each annotation", where)
            if annotation.get("was_cancelled"):
                continue
            label = _choice(annotation, source.choices, f"{where}, annotation {annotation.get('id', '?')}")
            labels[_annotator(annotation, number)] = label
            if annotation.get("ground_truth"):
                ground_truth = label
        if not labels:
            result.skipped["task_without_annotation"] += 1
            continue
        labels_by_task.append(labels)
        label, reached = _resolve(labels, ground_truth, source)
        how[reached] += 1
        if label is None:
            result.skipped[reached] += 1
            continue
        index = _whole(meta.get("sentence_index", counters[article]), "meta.sentence_index", where)
        counters[article] += 1
        before, after = ("", "")
        if source.articles is not None:
            if article not in lines:
                lines[article] = ArticleLines(articles[article])
            before, after = lines[article].neighbours(int(meta["start"]), int(meta["end"]))
        result.examples.append(Example(normalize(text), label, article, index, "annotation",
                                       f"labelstudio:{source.path}", before=before, after=after))
    result.articles = len(counters)
    _check_adjudicator(source, labels_by_task, how["dropped_no_adjudication"])
    if pooled:
        result.skipped["task_of_a_sentence_seen_before"] += pooled
    if left_out:
        result.skipped["excluded_article"] += len(left_out)
    # The adjudicator settles disagreements; agreement is between the annotators they settle.
    judged = [{a: x for a, x in labels.items() if a != source.adjudicator} for labels in labels_by_task]
    result.agreement = {f"labelstudio:{source.path}": {**agreement(judged), "resolved": dict(how),
                                                        "rule": source.resolve}}
    return result


def pool_same_sentence(tasks: list[Any]) -> tuple[list[Any], int]:
    """The tasks with those of one sentence (the same article and offsets: a task imported twice, or the
    sentence selected again) made one, holding the annotations of all; and how many were merged away.
    An annotation seen before (the same id, a task exported twice) is counted once.

    >>> a = {"id": 1, "data": {"meta": {"article": "x", "start": 0, "end": 5}}, "annotations": [{"id": 7}]}
    >>> b = {"id": 2, "data": {"meta": {"article": "x", "start": 0, "end": 5}}, "annotations": [{"id": 7}, {"id": 8}]}
    >>> tasks, merged = pool_same_sentence([a, b])
    >>> [x["id"] for x in tasks[0]["annotations"]], merged
    ([7, 8], 1)
    """
    first: dict[tuple[str, ...], dict[str, Any]] = {}
    kept: list[Any] = []
    for task in tasks:
        key = _sentence_key(task)
        if key is None:
            kept.append(task)
            continue
        annotations = list(task.get("annotations") or [])
        if key not in first:
            first[key] = {**task, "annotations": annotations}
            kept.append(first[key])
            continue
        seen = {a.get("id") for a in first[key]["annotations"] if isinstance(a, dict) and a.get("id") is not None}
        first[key]["annotations"] += [a for a in annotations
                                      if not (isinstance(a, dict) and a.get("id") is not None and a.get("id") in seen)]
    return kept, len(tasks) - len(kept)


def _sentence_key(task: Any) -> tuple[str, ...] | None:
    """(article, start, end) of a task whose meta names them, else None (such a task stands alone)."""
    data = task.get("data") if isinstance(task, dict) else None
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or not all(k in meta for k in ("article", "start", "end")):
        return None
    if not isinstance(task.get("annotations", []), (list, type(None))):
        return None
    # as the task is read: article 1 and "1" name one file, start 0 and "0" one offset
    return (str(meta["article"]), *(_offset_key(meta[k]) for k in ("start", "end")))


def _offset_key(value: Any) -> str:
    """An offset as `_whole` reads it (an int, or a string of digits), else as written (checked later)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return str(int(value))
    return json.dumps(value)


def _check_adjudicator(source: Any, labels_by_task: list[dict[str, str]], unsettled: int) -> None:
    """Disagreements left unsettled by an adjudicator who annotated nothing in the export: a misspelt name."""
    annotators = sorted({a for labels in labels_by_task for a in labels})
    if source.resolve == "adjudicator" and unsettled and source.adjudicator not in annotators:
        raise DataError(f"{source.path}: expected adjudicator {source.adjudicator!r} among the annotators of the "
                        f"export ({unsettled} disagreements wait for them), found only {annotators[:10]}; set "
                        "`adjudicator:` to one of them (an email or user id)")


def _task_text(data: dict[str, Any], meta: dict[str, Any], article: str, source: Any, articles: dict[str, str],
               where: str) -> str:
    """The task's sentence; checked against (or read from) its article at the recorded offsets."""
    text = data.get("text")
    if source.articles is None:
        if not text:
            raise DataError(f"{where}: expected the sentence in data.text, found none; set `articles:` to the "
                            "folder of the articles its offsets point into")
        return str(text)
    if article not in articles:
        articles[article] = read_text(article_path(source.articles, article, where, "the task's meta.article"))
    if "start" not in meta or "end" not in meta:
        raise DataError(f"{where}: expected meta.start and meta.end (character offsets), found {sorted(meta)}")
    start, end = _whole(meta["start"], "meta.start", where), _whole(meta["end"], "meta.end", where)
    if not 0 <= start < end <= len(articles[article]):
        raise DataError(f"{where}: expected offsets with 0 <= start < end <= {len(articles[article])} (the length "
                        f"of article {article!r}), found [{start}, {end}); the export and the article do not match")
    found = articles[article][start:end]
    if text is not None and _canonical(found) != _canonical(str(text)):
        raise DataError(f"{where}: expected its text at [{meta['start']}, {meta['end']}) of article {article!r}, "
                        f"found {found[:60]!r}; the export and the article do not match")
    return found


def _canonical(text: str) -> str:
    """A sentence for comparison: NFC, so that an accent composed in one file and decomposed in the other match."""
    return unicodedata.normalize("NFC", normalize(text))


def _whole(value: Any, what: str, where: str) -> int:
    """A whole number from the export (an int, or a string of digits); anything else is a DataError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise DataError(f"{where}: expected {what} to be a whole number, found {json.dumps(value, default=str)[:40]}")


def labelstudio_files(source: Any) -> list[Path]:
    files = [source.path]
    if source.articles is not None:
        files += sorted(source.articles.glob("*.txt"))
    return files
