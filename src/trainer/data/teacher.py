"""Distillation data: a teacher's probabilities over unlabeled sentences, keyed by article and offsets.

`trainer distill` draws sentences from a folder of articles (`draw_pool`), has the teacher label them, and
writes `write_probabilities`: one Parquet row per sentence with its article id, its [start, end) offsets,
its neighbours' offsets, a digest of its text and the teacher's probabilities, and no text, so the file can
be committed beside corpora whose text may not be. `read_teacher` (the reader of `kind: teacher`) reads the
text back from the articles, checks each digest, and gives train-only examples that carry the probabilities.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import TeacherSource
from trainer.data.sentences import Sentence, normalize, sentence_spans
from trainer.data.sources import Example, SourceResult, read_exclusions
from trainer.data.sources.text import article_path, file_problem, read_text
from trainer.errors import DataError
from trainer.infra.atomic import atomic_file
from trainer.infra.progress import bar
from trainer.labels import LABELS

PROBABILITY_COLUMNS = [f"p_{label}" for label in LABELS]
OFFSET_COLUMNS = ["start", "end", "before_start", "before_end", "after_start", "after_end"]
COLUMNS = ["article", *OFFSET_COLUMNS, "digest", *PROBABILITY_COLUMNS]
# The file's own metadata key (Parquet schema metadata): which teacher, over what, when.
META_KEY = b"trainer.teacher"


def corpus_name(folder: Path) -> str:
    """A folder of articles by its corpus's name: `corpora/polnear/text` is `polnear`."""
    return folder.parent.name if folder.name in ("text", "articles") else folder.name


def digest(text: str) -> str:
    """A short digest of a sentence's normalised text: the check that an article has not changed under its offsets."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PoolSentence:
    """One drawn sentence: its article, its span and its neighbours' spans (None at an article's edge)."""

    article: str
    sentence: Sentence
    before: Sentence | None
    after: Sentence | None


def draw_pool(source: TeacherSource, progress: bool = True) -> tuple[list[PoolSentence], dict[str, int]]:
    """Split every article of `source.articles` (less `exclude_articles`) into sentences, and draw
    `source.max_sentences` of them uniformly at random with `source.seed`; returns them in article order and
    counts of what was read and skipped."""
    excluded = read_exclusions(source.exclude_articles)
    files = sorted(source.articles.glob("*.txt"))
    everything: list[PoolSentence] = []
    counts = {"articles": 0, "excluded_articles": 0, "unreadable_articles": 0}
    for path in bar(files, desc=f"splitting {corpus_name(source.articles)}", unit="article", disable=not progress):
        if path.stem in excluded:
            counts["excluded_articles"] += 1
            continue
        if file_problem(path) is not None:
            counts["unreadable_articles"] += 1
            continue
        try:
            sentences, _ = sentence_spans(read_text(path))
        except DataError:
            counts["unreadable_articles"] += 1
            continue
        counts["articles"] += 1
        for i, sentence in enumerate(sentences):
            before = sentences[i - 1] if i else None
            after = sentences[i + 1] if i + 1 < len(sentences) else None
            everything.append(PoolSentence(path.stem, sentence, before, after))
    counts["sentences"] = len(everything)
    if len(everything) > source.max_sentences:
        keep = np.sort(np.random.default_rng(source.seed).choice(len(everything), source.max_sentences, replace=False))
        everything = [everything[i] for i in keep]
    counts["drawn"] = len(everything)
    return everything, counts


def write_probabilities(path: Path, pool: list[PoolSentence], probabilities: np.ndarray, meta: dict[str, Any]) -> None:
    """Write the pool's keys and the teacher's probabilities to `path` (Parquet, atomically); `meta` (the
    teacher, its fingerprint, the counts) goes into the file's schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def offsets(span: Sentence | None) -> tuple[int, int]:
        return (span.start, span.end) if span is not None else (-1, -1)

    columns: dict[str, Any] = {"article": [p.article for p in pool]}
    spans = [(*offsets(p.sentence), *offsets(p.before), *offsets(p.after)) for p in pool]
    for i, name in enumerate(OFFSET_COLUMNS):
        columns[name] = pa.array([s[i] for s in spans], type=pa.int32())
    columns["digest"] = [digest(p.sentence.text) for p in pool]
    for i, name in enumerate(PROBABILITY_COLUMNS):
        columns[name] = pa.array(np.round(probabilities[:, i], 5), type=pa.float32())
    table = pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta, sort_keys=True).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_file(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def read_meta(path: Path) -> dict[str, Any]:
    """The metadata `write_probabilities` stored in the file (the teacher and the counts)."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata.get(META_KEY, b"{}"))


def teacher_summary(source: TeacherSource, project: Path) -> dict[str, Any]:
    """What a model card says of a teacher source: the teacher, its encoder, and how many sentences of how many
    articles it labeled (from the file's metadata)."""
    meta = read_meta(source.path) if source.path.is_file() else {}
    counts = meta.get("counts", {})
    where = source.path.resolve()
    return {"file": str(where.relative_to(project)) if where.is_relative_to(project) else source.path.name,
            "teacher": meta.get("teacher", "?"), "base_model": meta.get("teacher_base_model", "?"),
            "sentences": counts.get("drawn", 0), "articles": counts.get("articles", 0),
            "corpus": meta.get("articles", corpus_name(source.articles))}


def read_frame(source: TeacherSource, columns: list[str] = COLUMNS) -> Any:
    """The probabilities file's `columns` (all by default), with a DataError for a file that is not one."""
    import pandas as pd
    import pyarrow.parquet as pq

    if not source.path.is_file():
        raise DataError(f"{source.path}: expected a teacher's probabilities file, found none; write it with "
                        "`trainer distill --teacher MODEL --config CONFIG`")
    try:
        present = set(pq.read_schema(source.path).names)
        frame = pd.read_parquet(source.path, columns=[c for c in columns if c in present])
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a file that is not Parquet
        raise DataError(f"{source.path}: expected a Parquet file written by `trainer distill`, found "
                        f"{type(exc).__name__}; write it again with `trainer distill`") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(f"{source.path}: expected the columns {columns}, found no {missing}; write it again with "
                        "`trainer distill`")
    return frame


def read_teacher(source: TeacherSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Train-only examples from a teacher's probabilities file: each sentence read back from its article at
    its offsets (a changed article's sentences are skipped and counted), labeled with the teacher's most
    probable label, and carrying the probabilities and its neighbours."""
    frame = read_frame(source)
    excluded = read_exclusions(source.exclude_articles)
    result = SourceResult()
    rows_by_article: dict[str, list[Any]] = defaultdict(list)
    for row in frame.itertuples(index=False):
        rows_by_article[str(row.article)].append(row)
    name = f"teacher:{source.path}"
    for article in bar(sorted(rows_by_article), desc=f"reading {source.path.name}", unit="article",
                       disable=not progress):
        if article in excluded:
            result.skipped["excluded_article"] += 1
            continue
        text = read_text(article_path(source.articles, article, f"{source.path}: article {article!r}",
                                         "the probabilities file's article column"))

        def piece(start: int, end: int) -> str:
            return normalize(text[start:end]) if 0 <= start < end <= len(text) else ""

        for index, row in enumerate(sorted(rows_by_article[article], key=lambda r: r.start)):
            sentence = piece(row.start, row.end)
            if not sentence or digest(sentence) != row.digest:
                result.skipped["teacher_sentence_not_at_its_offsets"] += 1
                continue
            probabilities = [float(getattr(row, column)) for column in PROBABILITY_COLUMNS]
            label = LABELS[int(np.argmax(probabilities))]
            result.examples.append(Example(sentence, label, article, index, "teacher", name,
                                           before=piece(row.before_start, row.before_end),
                                           after=piece(row.after_start, row.after_end), teacher=probabilities))
    result.articles = len(rows_by_article)
    return result


def teacher_files(source: TeacherSource) -> list[Path]:
    """The inputs a dataset with this source depends on (its fingerprint): the probabilities file and the
    articles it names."""
    if not source.path.is_file():
        return []
    articles = sorted({str(a) for a in read_frame(source, ["article"])["article"]})  # one column: the rest is read later
    return [source.path, *(source.articles / f"{article}.txt" for article in articles)]
