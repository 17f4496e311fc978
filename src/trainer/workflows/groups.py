"""Groups of a tag output's articles (publisher, month, any column), for `summarize` and `audit`.

Metadata may come with the articles (a table's columns) or from a CSV/TSV/JSONL joined on a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.errors import ConfigError, DataError

DATE_COLUMNS = ("date", "publication_date", "published", "month")


def with_metadata(articles: Any, metadata: Path | None, key: str) -> Any:
    """The articles table with the columns of `metadata` (CSV, TSV or JSONL) joined on its `key` column."""
    import pandas as pd

    if metadata is None:
        return articles
    if not metadata.is_file():
        raise ConfigError(f"--metadata: expected a CSV/TSV/JSONL file, found nothing at {metadata}")
    sep = "\t" if metadata.suffix.lower() == ".tsv" else ","
    try:
        extra = (pd.read_json(metadata, lines=True) if metadata.suffix.lower() == ".jsonl"
                 else pd.read_csv(metadata, sep=sep))
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors, decoding ones too
        raise DataError(f"--metadata {metadata}: expected a UTF-8 CSV, TSV or JSONL table, found one that cannot be "
                        f"read ({str(exc).splitlines()[0][:200]})") from None
    if key not in extra.columns:
        raise ConfigError(f"--key: expected a column {key!r} in {metadata}, found {list(extra.columns)}")
    extra = extra.astype(str).rename(columns={key: "article_id"})
    overlap = [c for c in extra.columns if c in articles.columns and c != "article_id"]
    return articles.drop(columns=overlap).merge(extra, on="article_id", how="left")


def group_column(articles: Any, by: str, option: str = "--by") -> Any:
    """Each article's group: the `by` column as text, or for `month` the first 7 characters of a date column."""
    if by != "month":
        if by not in articles.columns:
            raise ConfigError(f"{option}: expected a column of the articles table, found {by!r}; "
                              f"columns: {', '.join(sorted(articles.columns))} (or pass --metadata)")
        return articles[by].astype(str)
    column = next((c for c in DATE_COLUMNS if c in articles.columns), None)
    if column is None:
        raise ConfigError(f"{option} month: expected a date column ({', '.join(DATE_COLUMNS)}), found none; "
                          "pass --metadata with dates")
    return articles[column].astype(str).str.slice(0, 7)
