"""The brat kind: a brat standoff corpus of attribution annotations (PolNeAR), each sentence labeled
by whether an annotated claim cue's content covers it."""

from __future__ import annotations

import functools
import multiprocessing
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from trainer.config import BratSource
from trainer.data.rules import RuleLabeler, UserPattern, rules_path
from trainer.data.sentences import Sentence, neighbours, sentence_spans
from trainer.data.sources.text import read_article, read_exclusions, read_text
from trainer.data.sources.types import Example, SourceResult
from trainer.errors import DataError
from trainer.infra.progress import bar


_BRAT_ID = re.compile(r"^([TERAMN]\d+|#\d*|\*)$")


@dataclass(frozen=True)
class _Attribution:
    cue: str
    content: tuple[tuple[int, int], ...]
    cue_spans: tuple[tuple[int, int], ...] = ()


def parse_brat(text: str, where: str) -> tuple[list[_Attribution], list[tuple[int, int]]]:
    """Attributions (cue text, content spans) and Discard spans from a brat .ann file."""
    spans: dict[str, tuple[str, tuple[tuple[int, int], ...], str]] = {}
    events: list[dict[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if not _BRAT_ID.match(parts[0]):
            continue  # the rest of a span text that itself contains a line break
        try:
            if parts[0].startswith("T"):
                kind, _, ranges = parts[1].partition(" ")
                offsets = tuple(tuple(int(x) for x in r.split()) for r in ranges.split(";"))
                spans[parts[0]] = (kind, offsets, parts[2] if len(parts) > 2 else "")  # type: ignore[assignment]
            elif parts[0].startswith("E"):
                events.append(dict(arg.split(":", 1) for arg in parts[1].split()))
        except (IndexError, ValueError):
            raise DataError(f"{where}:{number}: expected a brat standoff line, found {line[:60]!r}") from None
    attributions = []
    for event in events:
        cue = spans.get(event.get("Cue", ""))
        content = spans.get(event.get("Content", ""))
        if cue is None or content is None:
            continue
        attributions.append(_Attribution(cue[2], content[1], cue[1]))
    discard = [offset for kind, offsets, _ in spans.values() if kind == "Discard" for offset in offsets]
    return attributions, discard  # type: ignore[return-value]


@functools.lru_cache(maxsize=4)
def _labeler(path: str) -> RuleLabeler:
    return RuleLabeler.from_yaml(path)


def _overlap(sentence: Sentence, spans: tuple[tuple[int, int], ...]) -> int:
    return sum(max(0, min(sentence.end, b) - max(sentence.start, a)) for a, b in spans)


@functools.lru_cache(maxsize=16)
def _cue_patterns(patterns: tuple[str, ...], where: str) -> list[UserPattern]:
    # A cue counts by its last word ("has said", "also told"), optionally with one word before.
    return [UserPattern(rf"^\W*(?:[\w']+\s+)*(?:{p})\W*$", where, regex.IGNORECASE, shown=p) for p in patterns]


def _counts(cue: str, source: BratSource, labeler: RuleLabeler) -> bool:
    """Does an annotated cue relay a claim? Vetoed cues never; beliefs only if the setting says so."""
    if any(p.match(cue) for p in _cue_patterns(tuple(source.excluded_cues), "brat source: excluded_cues")):
        return False
    if labeler.is_belief_cue(cue):
        return source.count_beliefs
    return labeler.counts_as_claim_cue(cue) or any(
        p.match(cue) for p in _cue_patterns(tuple(source.extra_claim_cues), "brat source: extra_claim_cues"))


def _relays(sentence: Sentence, attribution: _Attribution, length: int, min_share: float) -> bool:
    """The attribution's content covers enough of the sentence, or its cue is in the sentence and
    its (short) content lies within it: '"The bullying," Wallace said.'"""
    inside = _overlap(sentence, attribution.content)
    if inside / length >= min_share:
        return True
    content_length = sum(b - a for a, b in attribution.content) or 1
    return (_overlap(sentence, attribution.cue_spans) > 0 and inside / content_length >= 0.8
            and inside / length >= min_share / 2)


def _brat_article(job: tuple[BratSource, str, Path, Path]) -> SourceResult:
    source, article, text_path, ann_path = job
    labeler = _labeler(str(rules_path(source.rules)))
    result = SourceResult(articles=1)
    text = read_article(text_path, source, result)
    attributions, discard = parse_brat(read_text(ann_path), str(ann_path))
    counted = [a for a in attributions if _counts(a.cue, source, labeler)]
    sentences, removed = sentence_spans(text, skip=discard)
    result.removed.update(removed)
    texts = [s.text for s in sentences]
    for index, sentence in enumerate(sentences):
        length = max(1, sentence.end - sentence.start)
        attributed = any(_relays(sentence, a, length, source.min_content_share) for a in counted)
        label, label_source = ("attributed" if attributed else "verified"), "annotation"
        if source.unverified_rules:
            rule = labeler.label(sentence.text)
            if rule.label == "unverified":
                label, label_source = "unverified", "annotation+rule"
        before, after = neighbours(texts, index)
        result.examples.append(Example(sentence.text, label, article, index, label_source, f"brat:{source.path}",
                                       before=before, after=after))
    return result


def _map(
    func: Callable[[Any], SourceResult], items: list[Any], num_proc: int, desc: str, progress: bool
) -> SourceResult:
    """Apply `func` to every item (in worker processes when num_proc > 1), merging results in order."""
    result = SourceResult()
    progress_bar = bar(total=len(items), desc=desc, unit="article", disable=not progress)
    if num_proc > 1 and len(items) > 1:
        # spawn, not fork: a fork taken while other threads (torch, tqdm) hold locks can deadlock the child
        with ProcessPoolExecutor(max_workers=num_proc, mp_context=multiprocessing.get_context("spawn")) as pool:
            for part in pool.map(func, items, chunksize=max(1, len(items) // (num_proc * 8))):
                result.add(part)
                progress_bar.update()
    else:
        for item in items:
            result.add(func(item))
            progress_bar.update()
    progress_bar.close()
    return result


def read_brat(source: BratSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Sentences of a brat corpus labeled from its attribution annotations (first annotator by name)."""
    text_dir, ann_dir = source.path / source.text_dir, source.path / source.annotation_dir
    for folder in (text_dir, ann_dir):
        if not folder.is_dir():
            raise DataError(f"{source.path}: expected a '{folder.name}' folder in the brat corpus, found none")
    annotations: dict[str, list[Path]] = {}
    for ann in sorted(ann_dir.glob("*.ann")):
        article = ann.stem.rsplit("_", 1)[0]
        annotations.setdefault(article, []).append(ann)
    excluded = read_exclusions(source.exclude_articles)
    only = read_exclusions(source.only_articles) if source.only_articles else None
    result = SourceResult()
    jobs = []
    for text_path in sorted(text_dir.glob("*.txt")):
        article = text_path.stem
        if article in excluded:
            result.skipped["excluded_article"] += 1
        elif only is not None and article not in only:
            continue  # not asked for: not counted as skipped
        elif article not in annotations:
            result.skipped["article_without_annotations"] += 1
        else:
            jobs.append((source, article, text_path, annotations[article][0]))  # first annotator by name
    if source.limit is not None:
        jobs = jobs[: source.limit]
    if not jobs:
        raise DataError(f"{text_dir}: expected annotated .txt articles, found none")
    result.add(_map(_brat_article, jobs, num_proc, f"reading {source.path}", progress))
    return result


def brat_files(source: BratSource) -> list[Path]:
    listed = [source.only_articles] if source.only_articles else []
    return listed + sorted((source.path / source.text_dir).glob("*.txt")) + sorted(
        (source.path / source.annotation_dir).glob("*.ann")
    )


def brat_articles(source: BratSource) -> Path:
    """The folder of this brat corpus's article texts."""
    return source.path / source.text_dir
