"""Self-training: a `trainer tag` output read back as labeled sentences (kind: pseudo).

The teacher's label becomes the sentence's label where its probability is at least
`min_probability`. `build.split_sources` sends them all to train, after the gold sources, drops
those that overlap the gold data, and samples `max_sentences` of the rest (seeded).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from trainer.config import PseudoLabelSource
from trainer.data.sentences import normalize
from trainer.data.sources import Example, SourceResult, read_exclusions
from trainer.errors import DataError
from trainer.labels import LABELS


def pseudo_files(source: PseudoLabelSource) -> list[Path]:
    return sorted((source.path / "sentences").glob("part-*.parquet"))


def with_neighbours(frame: Any) -> Any:
    """The tag output's sentences with `before` and `after`: the sentences next to each in its article (by
    sentence_index; a tag output holds every sentence of an article), whatever their probability; "" where
    the next index is not there."""
    ordered = frame.sort_values(["article_id", "sentence_index"], kind="stable")
    articles = ordered["article_id"]
    texts = ordered["text"].map(lambda text: normalize(str(text))).groupby(articles)
    index = ordered["sentence_index"].groupby(articles)
    before = texts.shift(1).where(index.shift(1) == ordered["sentence_index"] - 1, "")
    after = texts.shift(-1).where(index.shift(-1) == ordered["sentence_index"] + 1, "")
    return frame.assign(before=before, after=after)  # aligned by index: the rows keep their order


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
    frame = with_neighbours(frame.reset_index(drop=True))
    result = SourceResult()
    excluded = read_exclusions(source.exclude_articles)
    left_out = frame["article_id"].isin(excluded)
    result.skipped["excluded_article"] += int(frame.loc[left_out, "article_id"].nunique())
    frame = frame[~left_out]
    confidence = frame[[f"p_{label}" for label in LABELS]].max(axis=1)
    confident = frame[confidence >= source.min_probability]
    result.skipped["pseudo_below_min_probability"] += len(frame) - len(confident)
    name = f"pseudo:{source.path}"
    for article, index, text, label, before, after in zip(
        confident["article_id"], confident["sentence_index"], confident["text"], confident["label"],
        confident["before"], confident["after"],
    ):
        result.examples.append(Example(normalize(str(text)), str(label), str(article), int(index), "pseudo", name,
                                       before=before, after=after))
    result.articles = len(Counter(e.article for e in result.examples))
    return result
