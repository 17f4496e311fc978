"""What `trainer tag` reads: the articles of a folder, a table or a data config, one at a time.

An input that cannot be tagged (a link to nothing, a FIFO or device, a file over `MAX_ARTICLE_BYTES`,
undecodable bytes, a broken table, a row without an id or with a number where the text belongs) is
skipped with its reason, never the end of the run: the `skipped` table lists it and the run's
summary counts it.

>>> shown(Path(os.fsdecode(b"caf\\xe9.txt")))
'caf\\\\xe9.txt'
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.data.sources.text import MAX_ARTICLE_BYTES as DEFAULT_MAX_ARTICLE_BYTES
from trainer.data.sources.text import file_problem, shown
from trainer.errors import DataError

# A text or HTML file larger than this is skipped as `too_large` (data/sources/text.py's limit, by default).
MAX_ARTICLE_BYTES = DEFAULT_MAX_ARTICLE_BYTES


@dataclass
class Article:
    """One input article: its id, text, metadata columns and where it came from."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    where: str = ""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def check_input(path: Path) -> None:
    """Refuse an input that is missing, or neither a folder nor a regular file (a FIFO would block)."""
    if not path.exists():
        raise DataError(f"{path}: expected a folder of articles, a JSONL/CSV/Parquet file or a data config, "
                        "found nothing there (check the path)")
    if not (path.is_dir() or path.is_file()):
        raise DataError(f"{path}: expected a folder or a regular file to read, found {(file_problem(path) or ('', 'a special file'))[1]}; "
                        "copy the data into a file")


def check_suffix(path: Path) -> None:
    """Refuse a single input file of a kind no reader takes (a `.tsv`, a `.jsonl.gz`), instead of reading nothing."""
    from trainer.data.sources import HTML_SUFFIXES, TABLE_SUFFIXES, TEXT_SUFFIXES

    known = TEXT_SUFFIXES + HTML_SUFFIXES + TABLE_SUFFIXES + (".yaml", ".yml")
    if path.is_file() and path.suffix.lower() not in known:
        raise DataError(f"{path}: expected a folder, an article ({', '.join(TEXT_SUFFIXES + HTML_SUFFIXES)}), a "
                        f"table ({', '.join(TABLE_SUFFIXES)}) or a data config (.yaml), found a "
                        f"{path.suffix or 'suffix-less'} file; convert it to one of these (a TSV to CSV, a .gz file "
                        "uncompressed)")


def unreadable(file: Path) -> str | None:
    """Why `file` is not read at all (`dangling_link`, `not_a_regular_file: a FIFO`, `too_large: ...`), or None."""
    problem = file_problem(file, MAX_ARTICLE_BYTES)
    if problem is None:
        return None
    kind, detail = problem
    return kind if kind == "dangling_link" else f"{kind}: {detail}"


def input_files(folder: Path) -> list[Path]:
    """The files (and links) under `folder`, or the file itself; links to folders are not walked."""
    if not folder.is_dir():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.is_symlink() or not p.is_dir())


def table_articles(file: Path, text_column: str, id_column: str | None, on_bad_encoding: str,
                   skipped: list[dict[str, str]]) -> Iterator[Article]:
    """The rows of a table as articles; a row without an id or text of its own is skipped with its reason."""
    from trainer.data.sources import read_table

    bad: list[str] = []  # JSONL lines that are not a JSON object: each skipped, the rest of the file read
    for number, (where, row) in enumerate(read_table(file, on_bad_encoding, bad_lines=bad)):
        where = shown(where)
        reason = bad_row(row, text_column, id_column)
        if reason:
            skipped.append({"where": where, "reason": reason})
            continue
        # a bad line keeps its place in the numbering: fixing it later renames no other row's article
        article = str(row[id_column]) if id_column else f"{shown(file.stem)}-{number + len(bad)}"
        meta = {k: metadata_cell(v) for k, v in row.items() if k not in (text_column, id_column)}
        yield Article(article, row[text_column] or "", meta, where)
    skipped += [{"where": shown(message.split(": expected")[0]), "reason": f"unreadable: {message[:200]}"}
                for message in bad]


def bad_row(row: dict[str, Any], text_column: str, id_column: str | None) -> str | None:
    if text_column not in row:
        return f"no_text: expected a '{text_column}' column, found {sorted(map(str, row))}; set --text-column"
    text = row[text_column]
    if text is not None and not isinstance(text, str):
        return f"not_text: expected text in the '{text_column}' column, found {type(text).__name__}"
    if text is not None and len(text) > MAX_ARTICLE_BYTES:  # as an article file over the limit is
        return f"too_large: {len(text):,} characters, over {MAX_ARTICLE_BYTES:,} for one article"
    if id_column is None:
        return None
    value = row.get(id_column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"no_id: expected an article id in the '{id_column}' column, found {json.dumps(value)}"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return f"bad_id: expected a text or whole-number id in the '{id_column}' column, found {type(value).__name__}"
    return None


def metadata_cell(value: Any) -> str | None:
    """A metadata cell as text: strings as they are, anything else as JSON (never Python's repr)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def read_article_bytes(file: Path) -> bytes:
    """At most MAX_ARTICLE_BYTES + 1 bytes of `file` (a file that grew since it was checked stays bounded)."""
    with file.open("rb") as handle:
        data = handle.read(MAX_ARTICLE_BYTES + 1)
    if len(data) > MAX_ARTICLE_BYTES:
        raise DataError(f"too_large: over {MAX_ARTICLE_BYTES:,} bytes for one article")
    return data
