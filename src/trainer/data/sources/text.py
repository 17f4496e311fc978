"""Reading and decoding input files: UTF-8 text (a bad byte an error, or replaced by setting), HTML
made into text, JSONL/CSV/Parquet tables, article-id lists, and the cells of a table's rows."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.config import SourceConfig
from trainer.data.sources.types import SourceResult
from trainer.errors import DataError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
TABLE_SUFFIXES = (".jsonl", ".csv", ".parquet")
# A text or HTML file larger than this is not one article (a 200 MB one-line dump, a log): skipped as
# `too_large` by raw folders, `trainer tag` and `select`, so that one file cannot exhaust memory.
MAX_ARTICLE_BYTES = 16 * 2**20
# The longest file name most file systems hold (ext4, XFS, tmpfs, APFS: 255 bytes).
MAX_NAME_BYTES = 255
# Byte-order marks of the encodings a UTF-8 decoder would turn into noise (UTF-32 first: its LE mark starts
# with UTF-16's); Windows' "Unicode" is UTF-16.
OTHER_UNICODE = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                 (b"\xfe\xff", "UTF-16"))


def shown(path: Path | str) -> str:
    """A path as text that any file or table can hold: bytes of a file name that are not UTF-8 as `\\xe9`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def file_problem(path: Path, limit: int = MAX_ARTICLE_BYTES) -> tuple[str, str] | None:
    """Why an input file is not read at all, as (kind, detail): a link to nothing, a FIFO or device
    (reading would block or never end), an article file over `limit` bytes. None for a file to read."""
    try:
        info = path.stat()  # follows links
    except OSError as exc:
        return ("dangling_link", "a link to nothing") if path.is_symlink() else ("unreadable", exc.strerror or "")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if stat.S_ISCHR(info.st_mode)
                or stat.S_ISBLK(info.st_mode) else "a socket or special file")
        return "not_a_regular_file", kind
    if info.st_size > limit and path.suffix.lower() not in TABLE_SUFFIXES:
        return "too_large", f"{info.st_size:,} bytes, over {limit:,} for one article"
    return None


def article_path(folder: Path, article: str, where: str, named_by: str) -> Path:
    """The file of `article` in `folder`; an id that would lead out of it (`../x`, `/etc/x`, a link out)
    is a DataError (`named_by`: where the id came from): paths from data never leave the folder they belong to."""
    path = folder / f"{article}.txt"
    plain = article and not any(c in article for c in "/\\\0") and not article.startswith(".")
    if plain and len(os.fsencode(path.name)) > MAX_NAME_BYTES:
        raise DataError(f"{where}: expected an article id that names a file in {folder}, found one of "
                        f"{len(os.fsencode(article)):,} bytes ({article[:40]!r}...), longer than a file name can be; "
                        f"fix {named_by}")
    if not plain or not path.resolve().is_relative_to(folder.resolve()):
        raise DataError(f"{where}: expected an article id that names a file in {folder}, found {article!r}; fix "
                        f"{named_by}")
    if not path.is_file():
        raise DataError(f"{where}: expected article {article!r} at {path}, found no such file")
    return path


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (a byte-order mark dropped), with a DataError for undecodable bytes or a
    file that cannot be read."""
    return decode_text(read_bytes(path), path, "error", SourceResult())


def read_bytes(path: Path) -> bytes:
    """A file's bytes, with a DataError naming a file that cannot be read (a link to nothing, no permission)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        found = "a link to nothing" if path.is_symlink() and not path.exists() else exc.strerror or type(exc).__name__
        raise DataError(f"{path}: expected a readable file, found {found}; fix or remove it") from None


def decode_text(data: bytes, path: Path, on_bad_encoding: str, result: SourceResult) -> str:
    """UTF-8 bytes as text, without a leading byte-order mark. Bytes that are not UTF-8 are a DataError,
    or with `on_bad_encoding: replace` become U+FFFD, counted as `decoded_with_replacement` and logged."""
    other = next((name for mark, name in OTHER_UNICODE if data.startswith(mark)), None)
    if other is not None:  # replacement characters would not make it readable either
        raise DataError(f"{path}: expected UTF-8 text, found {other} (its byte-order mark); re-save the file as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if on_bad_encoding == "error":
            raise DataError(
                f"{path}: expected UTF-8 text, found an undecodable byte at offset {exc.start}; re-save the file "
                "as UTF-8, or set on_bad_encoding: replace in the source"
            ) from None
        text = data.decode("utf-8", errors="replace")
        result.skipped["decoded_with_replacement"] += 1
        log.warning("%s: not UTF-8; decoded with replacement characters", path)
    return text.removeprefix("\ufeff")  # a BOM (Windows editors) is not part of the first sentence or header


_HTML = re.compile(r"<\s*(html|body|p|div|br|span|article)\b[^>]*>", re.IGNORECASE)


def read_article(path: Path, source: SourceConfig, result: SourceResult) -> str:
    """An article's text: UTF-8 (or decoded with replacement, by setting), HTML turned into text.

    Each fallback is counted in `result.skipped` (and so in the card) and logged.
    """
    return decode_article(read_bytes(path), path, source.on_bad_encoding, result)


def decode_article(data: bytes, path: Path, on_bad_encoding: str, result: SourceResult) -> str:
    """`read_article` on bytes already read (a Spark executor gets the file's bytes, not the file)."""
    text = decode_text(data, path, on_bad_encoding, result)
    # Path.read_text's universal newlines, so that offsets are the same as for a file read as text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if path.suffix.lower() not in HTML_SUFFIXES and len(_HTML.findall(text)) >= 2:
        result.skipped["html_in_text_file_converted"] += 1
        log.warning("%s: HTML where plain text was expected; extracted its text", path)
        text = html_to_text(text)
    return text


def read_jsonl(path: Path, text: str | None = None,
               bad_lines: list[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line (of `text`, when the file is read already);
    DataError names the bad line, or with `bad_lines` the line is left out and its DataError's message added."""
    # Lines end at "\n" only: U+2028 or U+0085 inside a JSON string (json.dumps(..., ensure_ascii=False)
    # writes them as they are) are text, not line ends as str.splitlines would have them.
    for number, line in enumerate((read_text(path) if text is None else text).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = parse_json(line, f"{path}:{number}", "a JSON object per line")
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line, found {type(obj).__name__}")
        except DataError as exc:
            if bad_lines is None:
                raise
            bad_lines.append(str(exc))
            continue
        yield number, obj


def parse_json(text: str, where: str, expected: str) -> Any:
    """JSON text as Python values; invalid JSON, or arrays nested past Python's recursion limit, a DataError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: expected {expected}, found invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise DataError(f"{where}: expected {expected}, found JSON nested too deep to read") from None


def read_table(
    path: Path, on_bad_encoding: str = "error", result: SourceResult | None = None, bad_lines: list[str] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a JSONL, CSV or Parquet file as (where, row), `where` naming file and line (or row).
    JSONL and CSV are decoded as `decode_text` does (`on_bad_encoding`, counted in `result`). With
    `bad_lines`, a JSONL line that is not a JSON object is left out (its message added) instead of an error."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
            once(names, path)
            rows = pq.read_table(path).to_pylist()
        except (OSError, ValueError) as exc:
            found = " ".join(str(exc).split())[:200]  # Arrow's messages run over several lines
            raise DataError(f"{path}: expected a Parquet file, found one that cannot be read ({found})") from None
        for number, row in enumerate(rows, start=1):
            yield f"{path}:row {number}", row
        return
    text = decode_text(read_bytes(path), path, on_bad_encoding, result if result is not None else SourceResult())
    if path.suffix.lower() == ".csv":
        try:
            # newline="": a quoted cell keeps its line breaks (paragraphs), as the csv module asks
            reader = csv.DictReader(io.StringIO(text, newline=""))
            csv.field_size_limit(max(csv.field_size_limit(), MAX_ARTICLE_BYTES))  # an article per cell
            once(reader.fieldnames or [], path)
            for row in reader:
                number = reader.line_num
                if None in row:  # more fields than the header names
                    raise DataError(f"{path}:{number}: expected {len(row) - 1} fields as in the header, found more "
                                    "(quote fields that hold commas)")
                yield f"{path}:{number}", row
        except csv.Error as exc:
            raise DataError(f"{path}: expected CSV, found {exc}") from None
    else:
        for number, row in read_jsonl(path, text, bad_lines):
            yield f"{path}:{number}", row


def once(columns: list[str], path: Path) -> None:
    """A DataError for a table whose header names a column twice: a row would keep only the last one's cell."""
    counts = Counter(columns)  # a header can have 300,000 columns: counted once, not once per column
    twice = sorted(c for c, n in counts.items() if n > 1)
    if twice:
        raise DataError(f"{path}: expected each column name once in the header, found {twice[0]!r} "
                        f"{counts[twice[0]]} times; rename or remove the extra columns")


def column_value(row: dict[str, Any], column: str, where: str) -> Any:
    """A row's cell in `column`; a DataError naming the columns found when it has none."""
    if column not in row:
        raise DataError(f"{where}: expected a '{column}' column, found {sorted(map(str, row))} (set the column name "
                        "in the config)")
    return row[column]


def text_value(value: Any, column: str, where: str) -> str:
    """A text cell: a string (null is empty); numbers or lists in a text column are a mistake."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(
            f"{where}: expected text in the '{column}' column, found {type(value).__name__} ({value!r:.40})"
        )
    return value


def id_value(row: dict[str, Any], column: str, where: str) -> str:
    """An article-id cell as text; a missing or blank id is a DataError."""
    value = column_value(row, column, where)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: expected an article id in the '{column}' column, found {json.dumps(value)}")
    return str(value)


def read_exclusions(path: Path | None) -> set[str]:
    """The article ids listed in a text file, one per line (blank lines and `#` comments left out)."""
    if path is None:
        return set()
    return {line.strip() for line in read_text(path).splitlines() if line.strip() and not line.startswith("#")}


def html_to_text(html: str) -> str:
    """Story text of an HTML page: headings, paragraphs and list items, one per line (BeautifulSoup)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript", "figure"]):
        tag.decompose()
    blocks = [el.get_text(" ", strip=True) for el in soup.find_all(["h1", "h2", "h3", "p", "li", "blockquote"])]
    blocks = [b for b in blocks if b]
    return "\n\n".join(blocks) if blocks else soup.get_text("\n", strip=True)

