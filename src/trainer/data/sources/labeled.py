"""The labeled and huggingface kinds: sentences labeled already, in a JSONL/CSV file or a `datasets` table."""

from __future__ import annotations

import bisect
import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.config import HuggingFaceSource, LabeledRowsSource, LabeledSource
from trainer.data.sentences import neighbours, normalize, sentence_spans
from trainer.data.sources.folder import folder_files
from trainer.data.sources.text import (
    article_path,
    column_value,
    id_value,
    read_exclusions,
    read_table,
    read_text,
    text_value,
)
from trainer.data.sources.types import Example, SourceResult
from trainer.errors import DataError
from trainer.labels import check_labels

log = logging.getLogger(__name__)


def _map_label(raw: Any, label_map: dict[str, str], where: str) -> str:
    label = label_map.get(str(raw), str(raw))
    check_labels([label], where)
    return label


def labeled_examples(
    rows: Iterator[tuple[str, dict[str, Any]]],
    source: LabeledRowsSource,
    source_name: str,
    keep_meta: bool = False,
) -> SourceResult:
    """Labeled rows to examples (`keep_meta`: other columns kept on each); rows of `exclude_articles`'
    articles are left out."""
    result = SourceResult()
    counters: Counter[str] = Counter()
    excluded, left_out = read_exclusions(source.exclude_articles), set()
    used = {source.text_column, source.label_column, source.article_column}
    for number, (where, row) in enumerate(rows):
        article = id_value(row, source.article_column, where) if source.article_column else f"{source_name}#{number}"
        if article in excluded:
            left_out.add(article)
            continue
        text = normalize(text_value(column_value(row, source.text_column, where), source.text_column, where))
        label = _map_label(column_value(row, source.label_column, where), source.label_map, where)
        if not text:
            result.skipped["empty_text"] += 1
            continue
        # true/false stay booleans (a `confident` column), everything else is read as text
        meta = {k: v if isinstance(v, bool) else str(v) for k, v in row.items() if k not in used} if keep_meta else {}
        result.examples.append(Example(text, label, article, counters[article], "gold", source_name, meta=meta))
        counters[article] += 1
    result.articles = len(counters)
    if left_out:
        result.skipped["excluded_article"] += len(left_out)
    return result


def read_labeled(source: LabeledSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Labeled sentences from JSONL/CSV, with a label-name mapping."""
    encoding = SourceResult()
    rows = read_table(source.path, source.on_bad_encoding, encoding)
    result = labeled_examples(rows, source, f"labeled:{source.path}")
    result.skipped.update(encoding.skipped)
    if source.articles is not None:
        add_neighbours(result.examples, source.articles)
    return result


def add_neighbours(examples: list[Example], folder: Path) -> int:
    """Fill each example's `before`/`after` from its article in `folder` (split once per article), finding
    the sentence by its normalised text: one of the split's sentences, or a run of them where another splitter
    cut elsewhere (the neighbours are then those around the run); returns how many were found. A sentence
    whose article is not in the folder, or that the article does not hold, keeps no neighbours: it is read
    as a bare sentence, counted in the log."""
    found, missing = 0, set()
    articles: dict[str, _Split] = {}
    for example in examples:
        if example.article not in articles:
            try:  # an id that names no file in the folder (or leads out of it) is never read
                text = read_text(article_path(folder, example.article, str(folder), "the article column"))
            except DataError:
                text = ""
                missing.add(example.article)
            articles[example.article] = _Split([s.text for s in sentence_spans(text)[0]])
        around = articles[example.article].neighbours(example.text)
        if around is not None:
            example.before, example.after = around
            found += 1
    if found < len(examples):
        log.info("%s: %d of %d sentences read without context (not found in their article; %d articles not in "
                 "the folder)", folder, len(examples) - found, len(examples), len(missing))
    return found


class _Split:
    """An article's sentences, and where each starts in them joined by spaces (for a sentence split otherwise)."""

    def __init__(self, texts: list[str]):
        self.texts, self.joined = texts, " ".join(texts)
        self.starts = list(itertools.accumulate((len(t) + 1 for t in texts[:-1]), initial=0)) if texts else []
        self.index = {t: i for i, t in reversed(list(enumerate(texts)))}  # the first of equal sentences

    def neighbours(self, sentence: str) -> tuple[str, str] | None:
        if sentence in self.index:
            return neighbours(self.texts, self.index[sentence])
        at = self.joined.find(sentence) if sentence else -1
        if at < 0:
            return None
        first = bisect.bisect_right(self.starts, at) - 1
        last = bisect.bisect_left(self.starts, at + len(sentence)) - 1
        return (self.texts[first - 1] if first > 0 else "", self.texts[last + 1] if last + 1 < len(self.texts) else "")


def read_huggingface(source: HuggingFaceSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Labeled sentences from `datasets.load_dataset`; integer labels are read through its ClassLabel names."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(source.path, data_files=source.data_files, split=source.split)
    except Exception as exc:  # noqa: BLE001 - the library raises many kinds; the user needs one line
        raise DataError(f"huggingface source {source.path!r}: could not load ({type(exc).__name__}: {exc})") from None
    feature = dataset.features.get(source.label_column)
    names = getattr(feature, "names", None)

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for number, row in enumerate(dataset):
            if names is not None and isinstance(row.get(source.label_column), int):
                row = {**row, source.label_column: names[row[source.label_column]]}
            yield f"{source.path}[{number}]", row

    return labeled_examples(rows(), source, f"hf:{source.path}")


def labeled_files(source: LabeledSource) -> list[Path]:
    """The labeled file, and its articles where it names a folder of them."""
    return folder_files(source) + (sorted(source.articles.glob("*.txt")) if source.articles else [])


def huggingface_files(source: HuggingFaceSource) -> list[Path]:
    return [Path(f) for f in source.data_files or [] if Path(f).is_file()]
