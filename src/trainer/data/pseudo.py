"""Self-training: a `trainer tag` output read back as labeled sentences (kind: pseudo).

The teacher's label becomes the sentence's label where its probability is at least
`min_probability`. `build.split_sources` sends them all to train, after the gold sources, drops
those that overlap the gold data, and samples `max_sentences` of the rest (seeded).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from trainer.config import PseudoLabelSource
from trainer.data.sentences import normalize
from trainer.data.sources import Example, SourceResult, read_exclusions
from trainer.errors import DataError
from trainer.labels import LABELS


def pseudo_files(source: PseudoLabelSource) -> list[Path]:
    return sorted((source.path / "sentences").glob("part-*.parquet"))


def read_pseudo(source: PseudoLabelSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    from trainer.workflows.tagging import read_tables

    columns = ["article_id", "sentence_index", "text", "label", *(f"p_{label}" for label in LABELS)]
    frame = read_tables(source.path)
    missing = [c for c in columns if c not in frame.columns]
    if frame.empty or missing:
        raise DataError(
            f"{source.path}: expected a `trainer tag` output with sentences/part-*.parquet holding {columns}, "
            f"found {'no sentences' if frame.empty else f'no {missing}'}; run trainer tag --output {source.path} first"
        )
    result = SourceResult()
    excluded = read_exclusions(source.exclude_articles)
    left_out = frame["article_id"].isin(excluded)
    result.skipped["excluded_article"] += int(frame.loc[left_out, "article_id"].nunique())
    frame = frame[~left_out]
    confidence = frame[[f"p_{label}" for label in LABELS]].max(axis=1)
    confident = frame[confidence >= source.min_probability]
    result.skipped["pseudo_below_min_probability"] += len(frame) - len(confident)
    name = f"pseudo:{source.path}"
    for article, index, text, label in zip(confident["article_id"], confident["sentence_index"],
                                           confident["text"], confident["label"]):
        result.examples.append(Example(normalize(str(text)), str(label), str(article), int(index), "pseudo", name))
    result.articles = len(Counter(e.article for e in result.examples))
    return result
