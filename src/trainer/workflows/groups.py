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
        # ids as written: read as numbers, "007" would become 7 and join no article
        extra = (pd.read_json(metadata, lines=True, dtype=False) if metadata.suffix.lower() == ".jsonl"
                 else pd.read_csv(metadata, sep=sep, dtype=str))
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors, decoding ones too
        raise DataError(f"--metadata {metadata}: expected a UTF-8 CSV, TSV or JSONL table, found one that cannot be "
                        f"read ({str(exc).splitlines()[0][:200]})") from None
    if key not in extra.columns:
        raise ConfigError(f"--key: expected a column {key!r} in {metadata}, found {list(extra.columns)}")
    extra = extra.astype(str).rename(columns={key: "article_id"})
    twice = extra["article_id"][extra["article_id"].duplicated()]
    if len(twice):  # a left join would count that article's sentences once per row
        raise DataError(f"--metadata {metadata}: expected each article once in the {key!r} column, found "
                        f"{twice.iloc[0]!r} {int((extra['article_id'] == twice.iloc[0]).sum())} times; "
                        "keep one row per article")
    if len(articles) and not articles["article_id"].astype(str).isin(extra["article_id"]).any():
        raise DataError(f"--metadata {metadata}: expected the {key!r} column to hold the tag output's article ids "
                        f"(such as {str(articles['article_id'].iloc[0])!r}), found none of them (its values are "
                        f"such as {extra['article_id'].iloc[0] if len(extra) else 'nothing'!r}); pass --key naming "
                        "the column of article ids")
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
