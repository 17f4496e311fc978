"""Readers that turn each kind of input into labeled (or rule-labeled) sentence examples.

Every reader returns a `SourceResult`: the examples, what cleaning removed, and anything it skipped
or could not match (reported in the dataset card, never dropped silently). Examples without a label
(raw article folders) get one from the rules in `build.py`.

One module per kind (`corpus`, `folder`, `brat`, `labeled` with huggingface), the file reading they
share in `text`, their result types in `types`, and reading any kind through the registry in `kinds`.
"""

from __future__ import annotations

from trainer.data.sources.brat import brat_articles, brat_files, parse_brat, read_brat
from trainer.data.sources.corpus import corpus_articles, corpus_files, read_corpus
from trainer.data.sources.folder import folder_articles, folder_documents, folder_files, read_folder
from trainer.data.sources.kinds import article_folder, input_files, read_source
from trainer.data.sources.labeled import (
    add_neighbours,
    huggingface_files,
    labeled_examples,
    labeled_files,
    read_huggingface,
    read_labeled,
)
from trainer.data.sources.text import (
    HTML_SUFFIXES,
    TABLE_SUFFIXES,
    TEXT_SUFFIXES,
    article_path,
    column_value,
    decode_article,
    decode_text,
    html_to_text,
    id_value,
    parse_json,
    read_article,
    read_bytes,
    read_exclusions,
    read_jsonl,
    read_table,
    read_text,
    text_value,
)
from trainer.data.sources.types import Example, SourceResult

__all__ = [
    "add_neighbours",
    "HTML_SUFFIXES",
    "TABLE_SUFFIXES",
    "TEXT_SUFFIXES",
    "Example",
    "SourceResult",
    "article_folder",
    "article_path",
    "brat_articles",
    "brat_files",
    "column_value",
    "corpus_articles",
    "corpus_files",
    "decode_article",
    "decode_text",
    "folder_articles",
    "folder_documents",
    "folder_files",
    "html_to_text",
    "huggingface_files",
    "id_value",
    "input_files",
    "labeled_examples",
    "labeled_files",
    "parse_json",
    "parse_brat",
    "read_article",
    "read_brat",
    "read_bytes",
    "read_corpus",
    "read_exclusions",
    "read_folder",
    "read_huggingface",
    "read_jsonl",
    "read_labeled",
    "read_source",
    "read_table",
    "read_text",
    "text_value",
]
