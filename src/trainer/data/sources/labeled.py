"""The labeled and huggingface kinds: sentences labeled already, in a JSONL/CSV file or a `datasets` table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.config import HuggingFaceSource, LabeledRowsSource, LabeledSource
from trainer.data.sentences import normalize
from trainer.data.sources.text import column_value, id_value, read_exclusions, read_table, text_value
from trainer.data.sources.types import Example, SourceResult
from trainer.errors import DataError
from trainer.labels import check_labels


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
    return result


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


def huggingface_files(source: HuggingFaceSource) -> list[Path]:
    return [Path(f) for f in source.data_files or [] if Path(f).is_file()]
