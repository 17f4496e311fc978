"""The folder kind: raw, unlabeled articles (text, HTML, or a table's text column), labeled later by the rules."""

from __future__ import annotations

import logging
from pathlib import Path

from trainer.config import FolderSource, LabeledSource
from trainer.data.sentences import neighbours, sentence_spans
from trainer.data.sources.text import (
    HTML_SUFFIXES,
    TABLE_SUFFIXES,
    TEXT_SUFFIXES,
    column_value,
    file_problem,
    html_to_text,
    id_value,
    read_article,
    read_exclusions,
    read_table,
    shown,
    text_value,
)
from trainer.data.sources.types import Example, SourceResult
from trainer.errors import DataError
from trainer.infra.progress import bar

log = logging.getLogger(__name__)


def folder_documents(source: FolderSource, result: SourceResult) -> list[tuple[str, str, str]]:
    """(article id, raw text, where) for every document in the folder."""
    documents: list[tuple[str, str, str]] = []
    paths = (sorted(p for p in source.path.rglob("*") if p.is_file() or p.is_symlink()) if source.path.is_dir()
             else [source.path])
    for path in paths:
        suffix = path.suffix.lower()
        problem = file_problem(path) if suffix in TEXT_SUFFIXES + HTML_SUFFIXES + TABLE_SUFFIXES else None
        if problem is not None:
            result.skipped[problem[0]] += 1
            log.warning("%s: %s; skipped", shown(path), problem[1])
            continue
        if suffix in TEXT_SUFFIXES:
            documents.append((shown(path.stem), read_article(path, source, result), shown(path)))
        elif suffix in HTML_SUFFIXES:
            documents.append((shown(path.stem), html_to_text(read_article(path, source, result)), shown(path)))
        elif suffix in TABLE_SUFFIXES:
            for number, (where, row) in enumerate(read_table(path, source.on_bad_encoding, result)):
                text = text_value(column_value(row, source.text_column, where), source.text_column, where)
                article = id_value(row, source.id_column, where) if source.id_column else f"{shown(path.stem)}-{number}"
                documents.append((article, text, where))
    if not documents:
        raise DataError(
            f"{source.path}: expected articles (.txt, .md, .html, or .jsonl/.csv with a "
            f"'{source.text_column}' column), found none"
        )
    return documents


def read_folder(source: FolderSource, num_proc: int = 1, progress: bool = True) -> SourceResult:
    """Raw articles, cleaned and split; labels come from the rules (in build)."""
    excluded = read_exclusions(source.exclude_articles)
    result = SourceResult()
    seen: set[str] = set()
    documents = folder_documents(source, result)
    for article, text, where in bar(documents, desc=f"reading {source.path}", disable=not progress):
        if article in excluded:
            result.skipped["excluded_article"] += 1
            continue
        if article in seen:
            raise DataError(f"{where}: article id '{article}' appears twice; expected unique ids")
        seen.add(article)
        if not text.strip():
            result.skipped["empty_article"] += 1
            continue
        sentences, removed = sentence_spans(text)
        result.removed.update(removed)
        result.articles += 1
        texts = [s.text for s in sentences]
        for i, text in enumerate(texts):
            before, after = neighbours(texts, i)
            result.examples.append(Example(text, None, article, i, "rule", f"folder:{source.path}", before=before,
                                           after=after))
    return result


def folder_files(source: FolderSource | LabeledSource) -> list[Path]:
    return sorted(p for p in source.path.rglob("*") if p.is_file()) if source.path.is_dir() else [source.path]


def folder_articles(source: FolderSource) -> Path:
    """The folder (or single file) this source reads its articles from."""
    return source.path
