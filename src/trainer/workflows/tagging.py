"""`trainer tag`: sentence-level sourcing for whole collections, as Parquet tables to analyse.

Input: a folder of `.txt`/`.md`/`.html` articles, a JSONL/CSV/Parquet file of articles (a text
column, an id column, any metadata columns), or a data config's article sources. Output, in parts
that are each written whole and then renamed into place:

- `sentences/part-NNNNN.parquet`: one row per sentence, with its article id, paragraph and sentence
  index, character offsets into the article text (`text[start:end]` is the sentence as written),
  the label, one probability per label, the `truncated` flag, the rule cues that matched, and the
  model's name and MLflow run id;
- `articles/part-NNNNN.parquet`: one row per article: counts and shares of each label, its metadata
  columns, its content hash, what cleaning removed, and its language (`language`, an ISO 639-1 code,
  and `language_confidence`; articles confidently not in English are counted and warned about, since
  the models read English only);
- `skipped/part-NNNNN.parquet`: inputs that could not be tagged, with the reason.

With `format="csv"` each table is also written as one `<table>.csv` when the run ends, and with
`format="xlsx"` as a sheet of `tagged.xlsx` (list columns such as the rule cues joined by "; "); the
Parquet parts stay, since they are what a rerun resumes from.

`manifest.json` names the model and every finished part. A rerun skips articles already tagged
(same id and content hash), so a killed run loses at most the part in progress.

>>> content_hash("Shares rose.")[:12]
'c097a98c4530'
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.data.language import ENGLISH, MIN_CONFIDENCE, detect, warning
from trainer.errors import ConfigError, DataError
from trainer.infra.atomic import atomic_file
from trainer.infra.locks import output_lock
from trainer.labels import LABELS
from trainer.workflows.tag_input import (
    Article,
    check_input,
    check_suffix,
    content_hash,
    input_files,
    read_article_bytes,
    shown,
    table_articles,
    unreadable,
)

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TABLES = ("sentences", "articles", "skipped")
# Sentences per part: a kill loses at most one part's work.
PART_SENTENCES = 20_000
PART_NAME = re.compile(r"part-\d{5,}\.parquet")
FORMATS = ("parquet", "csv", "xlsx")  # the parts are Parquet; csv and xlsx add whole tables beside them
WORKBOOK = "tagged.xlsx"
EXCEL_MAX_ROWS = 1_048_575  # an Excel sheet's rows, less the header


def iter_articles(path: Path, text_column: str = "text", id_column: str | None = None,
                  on_bad_encoding: str = "error", skipped: list[dict[str, str]] | None = None) -> Iterator[Article]:
    """Every article of the input, with the metadata columns of a table passed through. What cannot be
    read (see `tag_input`) goes into `skipped` with its reason; only a missing input is an error."""
    from trainer.config import load_data_config
    from trainer.data.sources import article_folder, read_exclusions

    skipped = skipped if skipped is not None else []
    check_input(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        folders = [(article_folder(s), read_exclusions(s.exclude_articles)) for s in load_data_config(path).sources]
    else:
        folders = [(path, set())]
    for folder, excluded in folders:
        for file in input_files(folder):
            yield from _file_articles(file, excluded, text_column, id_column, on_bad_encoding, skipped)


def _file_articles(file: Path, excluded: set[str], text_column: str, id_column: str | None, on_bad_encoding: str,
                   skipped: list[dict[str, str]]) -> Iterator[Article]:
    """The articles of one file; the file skipped, with its reason, when it cannot be read."""
    from trainer.data.sources import HTML_SUFFIXES, TABLE_SUFFIXES, TEXT_SUFFIXES

    suffix = file.suffix.lower()
    if suffix not in TABLE_SUFFIXES + TEXT_SUFFIXES + HTML_SUFFIXES:
        return
    if suffix not in TABLE_SUFFIXES and shown(file.stem) in excluded:
        return
    reason = unreadable(file)
    try:
        if reason is None and suffix in TABLE_SUFFIXES:
            yield from table_articles(file, text_column, id_column, on_bad_encoding, skipped)
        elif reason is None:
            yield file_article(file, read_article_bytes(file), on_bad_encoding)
    except OSError as exc:
        reason = f"unreadable: {exc.strerror or type(exc).__name__}"
    except DataError as exc:
        reason = undecodable(exc) if "expected UTF-8 text" in str(exc) else f"unreadable: {str(exc)[:200]}"
    if reason is not None:
        skipped.append({"where": shown(file), "reason": reason})


def file_article(path: Path, data: bytes, on_bad_encoding: str) -> Article:
    """An article file's bytes as build-data reads them (decoded, HTML turned into text), with the
    `path` and `decoded_with_replacement` metadata columns. `trainer tag` reads the bytes from disk;
    the Spark job (`spark_tag.py`) gets them from Spark's binaryFile source."""
    from trainer.data.sources import HTML_SUFFIXES, SourceResult, decode_article, html_to_text

    result = SourceResult()
    text = decode_article(data, Path(shown(path)), on_bad_encoding, result)
    if path.suffix.lower() in HTML_SUFFIXES:
        text = html_to_text(text)
    replaced = str(bool(result.skipped.get("decoded_with_replacement")))
    return Article(shown(path.stem), text, {"path": shown(path), "decoded_with_replacement": replaced}, shown(path))


def count_inputs(path: Path) -> int | None:
    """How many articles `iter_articles` will read, where that is quick to know (a folder of files, a Parquet
    or JSONL table; None for a data config or a CSV): the progress display's total."""
    from trainer.data.sources import HTML_SUFFIXES, TABLE_SUFFIXES, TEXT_SUFFIXES

    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            suffixes = [p.suffix.lower() for p in path.rglob("*")]
            if any(s in TABLE_SUFFIXES for s in suffixes):  # tables inside: their rows are articles
                return None
            return sum(1 for s in suffixes if s in TEXT_SUFFIXES + HTML_SUFFIXES)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if suffix == ".jsonl":
            with path.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
    except OSError:
        return None
    return None


def undecodable(error: DataError) -> str:
    """The `skipped` table's reason for a file that is not UTF-8 (with --on-bad-encoding error)."""
    found = str(error).split(";")[0].split(": expected UTF-8 text, ")[-1]
    if "byte-order mark" in found:  # UTF-16: replacement characters would not make it readable
        return f"undecodable: {found}; re-save it as UTF-8"
    return f"undecodable: {found}; re-save it as UTF-8, or pass --on-bad-encoding replace"


def _read_manifest(output: Path) -> dict[str, Any] | None:
    """The manifest of an earlier tag output, or None; one that is not a tag manifest is a ConfigError."""
    path = output / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"--output: expected the {MANIFEST} of an earlier trainer tag in {output}, found one that "
                          f"cannot be read ({exc}); choose another folder") from None
    if isinstance(manifest, dict) and manifest.get("engine") == "spark":
        return manifest  # tag-spark's: refused by the caller with its own reason
    keys = ("model", "run_id", "parts", "done")
    if not isinstance(manifest, dict) or any(key not in manifest for key in keys) or not isinstance(
            manifest["parts"], list) or not isinstance(manifest["done"], dict):
        raise ConfigError(f"--output: expected the {MANIFEST} of an earlier trainer tag in {output} (with "
                          f"{', '.join(keys)}), found another JSON; choose another folder")
    bad = [part for part in manifest["parts"]
           if not (isinstance(part, dict) and PART_NAME.fullmatch(str(part.get("name"))))]
    if bad:  # a name from the file is a path that could lead out of the output (`../../x.parquet`)
        raise ConfigError(f"--output: expected parts named part-NNNNN.parquet in {path}, found {str(bad[0])[:80]}; "
                          "choose another folder")
    manifest.setdefault("partial", [])
    manifest.setdefault("skipped_where", [])
    return manifest


def _write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    atomic_file(output / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8"))


def _write_table(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # every row's columns (pyarrow would take the first row's only, dropping other tables' metadata columns)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = pa.Table.from_pylist([{column: row.get(column) for column in columns} for row in rows])
    atomic_file(path, lambda tmp: pq.write_table(table, tmp))


# Rule cues are looked for in a sentence's first characters only: a megabyte "sentence" (a dump
# without full stops) would run each pattern past its time limit.
RULE_TEXT_CHARS = 5_000


def article_rows(article: Article, labeler: Any) -> tuple[int, Iterator[dict[str, Any]], Counter[str]]:
    """The number of the article's sentences, their rows of the `sentences` table (made one at a time,
    before the model's columns, with the text the model reads as `model_input`), and what cleaning
    removed."""
    from trainer.data.sentences import InContext, line_starts, neighbours, sentence_spans

    sentences, removed = sentence_spans(article.text)
    starts = line_starts(article.text)
    texts = [s.text for s in sentences]

    def rows() -> Iterator[dict[str, Any]]:
        for index, s in enumerate(sentences):
            # the model input carries its neighbours, for a model that reads context (model.context)
            yield {"article_id": article.id, "paragraph_index": bisect.bisect_right(starts, s.start) - 1,
                   "sentence_index": index, "start": s.start, "end": s.end, "text": article.text[s.start:s.end],
                   "rule_cues": labeler.label(s.text[:RULE_TEXT_CHARS]).fired,
                   "model_input": InContext(s.text, *neighbours(texts, index))}

    return len(sentences), rows(), removed


def split_article(article: Article, labeler: Any) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The article's sentences as rows of the `sentences` table, before the model's columns, with the
    text the model reads (`model_input`); and what cleaning removed. The Spark job (`spark_tag.py`) splits
    with this; `trainer tag` with `article_rows`, which makes the same rows one at a time."""
    _, rows, removed = article_rows(article, labeler)
    return list(rows), removed


SENTENCE_COLUMNS = ("article_id", "paragraph_index", "sentence_index", "start", "end", "text", "label",
                    *(f"p_{k}" for k in LABELS), "truncated", "rule_cues", "model", "run_id")
# An input column named like one the articles table computes is kept under this prefix.
INPUT_PREFIX = "input_"


def sentence_row(row: dict[str, Any], model_name: str, run_id: str | None) -> dict[str, Any]:
    """A `split_article` row with the model's columns, in the table's column order."""
    full = {**row, "model": model_name, "run_id": run_id}
    return {column: full[column] for column in SENTENCE_COLUMNS}


def article_row(article: Article, labels: Counter[str], removed: Counter[str]) -> dict[str, Any]:
    """The `articles` table's row: counts and shares of each label, cleaning, language, metadata columns (an
    input column named like a computed one gets the prefix `input_`)."""
    n = sum(labels.values())
    language = detect(article.text)
    row = {
        "article_id": article.id, "content_sha256": content_hash(article.text), "n_sentences": n,
        **{f"n_{k}": labels[k] for k in LABELS}, **{f"share_{k}": labels[k] / n if n else 0.0 for k in LABELS},
        "cleaning_removed": json.dumps(dict(removed)), "language": language.code,
        "language_confidence": language.confidence,
    }
    for key, value in article.meta.items():
        row[f"{INPUT_PREFIX}{key}" if key in row or key.startswith(INPUT_PREFIX) else key] = value
    return row


@dataclass
class TagResult:
    output: Path
    articles: int
    sentences: int
    skipped: int
    reused: int
    non_english: dict[str, int] = field(default_factory=dict)  # articles tagged now, by confident language


def tag(
    model: str | Path,
    input: Path,
    output: Path,
    text_column: str = "text",
    id_column: str | None = None,
    overwrite: bool = False,
    part_sentences: int = PART_SENTENCES,
    on_bad_encoding: str = "error",
    progress: bool = True,
    format: str = "parquet",
) -> TagResult:
    """Tag every sentence of `input` with `model` into Parquet parts under `output` (resumable); with
    `format` csv or xlsx, the whole tables too, in that format, once every article is tagged.

    One `tag` writes into an output at a time (`.locks/NAME.lock` beside it, keyed on the real path,
    so that a link to the output shares its lock): a second would number its parts like the first's
    and remove the part the first is writing.
    """
    if format not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, found {format!r}")
    check_input(input)
    check_suffix(input)
    with output_lock(output, f"--output {output}", "trainer tag into it"):
        result = _tag(model, input, output, text_column, id_column, overwrite, part_sentences, on_bad_encoding,
                      progress)
        if format != "parquet":
            export_tables(output, format)
        return result


def export_tables(output: Path, format: str) -> list[Path]:
    """Every table of a tag output as one CSV file each, or as the sheets of one Excel workbook; each
    file written whole. A table too long for an Excel sheet is refused before anything is written."""
    frames = {table: _flat(read_tables(output, table)) for table in TABLES}
    if format == "csv":
        for table, frame in frames.items():
            atomic_file(output / f"{table}.csv", lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
        return [output / f"{table}.csv" for table in TABLES]
    too_long = [f"{table} ({len(frame):,} rows)" for table, frame in frames.items() if len(frame) > EXCEL_MAX_ROWS]
    if too_long:
        raise DataError(f"--format xlsx: expected at most {EXCEL_MAX_ROWS:,} rows per sheet, found "
                        f"{', '.join(too_long)}; use --format csv or parquet for a corpus this size")

    from trainer.outputs.spreadsheet import write_workbook

    atomic_file(output / WORKBOOK, lambda tmp: write_workbook(tmp, frames))
    return [output / WORKBOOK]


def _flat(frame: Any) -> Any:
    """List columns (the rule cues) as "; "-joined text, which a spreadsheet cell holds."""
    for column in frame.columns:
        if len(frame) and frame[column].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
            frame[column] = frame[column].map(lambda v: "; ".join(map(str, v)) if v is not None else "")
    return frame


def _tag(
    model: str | Path, input: Path, output: Path, text_column: str, id_column: str | None, overwrite: bool,
    part_sentences: int, on_bad_encoding: str, progress: bool,
) -> TagResult:
    from trainer.data.rules import RuleLabeler, rules_path
    from trainer.infra.progress import bar as progress_bar

    parts = _open_output(model, output, overwrite)
    done: dict[str, str] = parts.manifest["done"]
    labeler = RuleLabeler.from_yaml(rules_path(None))
    seen: dict[str, str] = {}
    counts = {"articles": 0, "reused": 0}
    # against the inputs' count when it is known (files of a folder, rows of a table)
    bar = progress_bar(total=count_inputs(input), desc="tagging", unit="article", disable=not progress,
                       mininterval=1.0)
    for article in iter_articles(input, text_column, id_column, on_bad_encoding, parts.skipped):
        if article.id in seen:
            raise DataError(f"expected unique article ids, found {article.id!r} at {seen[article.id]} and at "
                            f"{article.where}; set --id-column or make the ids unique")
        seen[article.id] = article.where
        if done.get(article.id) == content_hash(article.text) and article.id not in parts.manifest["partial"]:
            counts["reused"] += 1
            continue
        n, rows, removed = article_rows(article, labeler)
        if not n:
            parts.skipped.append({"where": article.where, "reason": "empty_article"})
            continue
        parts.batch.append(_Pending(article, rows, n, removed))
        counts["articles"] += 1
        bar.update(1)
        bar.set_postfix(sentences=parts.sentences + parts.pending(), refresh=False)
        while parts.pending() >= part_sentences:  # one long article fills several parts
            parts.flush(part_sentences)
    parts.flush()
    bar.set_postfix(sentences=parts.sentences, refresh=False)  # the closing line counts every sentence
    bar.close()
    total_skipped = len(parts.manifest["skipped_where"])
    if counts["articles"] == 0 and counts["reused"] == 0:
        first = f": {parts.first_skipped}" if parts.first_skipped else ""
        raise DataError(f"{input}: expected articles to tag, found none that could be read "
                        f"({total_skipped} skipped{first})")
    if parts.non_english:
        log.warning("%s", warning(parts.non_english, counts["articles"], "articles tagged"))
    return TagResult(output, counts["articles"], parts.sentences, total_skipped, counts["reused"],
                     dict(parts.non_english))


@dataclass
class _Pending:
    """An article waiting for the model: its rows not yet written, how many in all, its labels so far."""

    article: Article
    rows: Iterator[dict[str, Any]]
    left: int
    removed: Counter[str]
    labels: Counter[str] = field(default_factory=Counter)
    started: bool = False


@dataclass
class _Parts:
    """An open tag output: the model that tags, the manifest, and the part in progress (its articles
    with their sentence rows, and the inputs skipped since the last part)."""

    output: Path
    classifier: Any
    model_name: str
    run_id: str | None
    manifest: dict[str, Any]
    batch: list[_Pending] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    non_english: Counter[str] = field(default_factory=Counter)  # articles confidently in another language
    sentences: int = 0  # in the parts written by this run
    first_skipped: str = ""

    def pending(self) -> int:
        return sum(entry.left for entry in self.batch)

    def flush(self, limit: int | None = None) -> None:
        """Tag up to `limit` sentences of the batch (all without one) and write them as the next part of
        each table; then list the part in the manifest. An article whose rows do not all fit is listed
        as `partial` until its last row is written (its article row comes with that last part)."""
        skipped = self._new_skipped()
        take = self._take(limit)
        if not take and not skipped:
            return
        self._purge_earlier([entry for entry, _ in take if not entry.started])
        texts = [row["model_input"] for _, rows in take for row in rows]
        predictions = iter(self.classifier.iter_predict(iter(texts)))
        sentence_rows, article_rows_, finished = [], [], []
        for entry, rows in take:
            entry.started = True
            for row in rows:
                p = next(predictions)
                row.update(label=p.label, **{f"p_{k}": v for k, v in p.probabilities.items()}, truncated=p.truncated)
                entry.labels[p.label] += 1
                sentence_rows.append(sentence_row(row, self.model_name, self.run_id))
            if entry.left == 0:
                article_rows_.append(article_row(entry.article, entry.labels, entry.removed))
                finished.append(entry)
                if article_rows_[-1]["language"] != ENGLISH and article_rows_[-1]["language_confidence"] >= MIN_CONFIDENCE:
                    self.non_english[article_rows_[-1]["language"]] += 1
        self._write_part(sentence_rows, article_rows_, skipped, take, finished)

    def _take(self, limit: int | None) -> list[tuple[_Pending, list[dict[str, Any]]]]:
        """The next rows to tag, up to `limit`, article by article."""
        import itertools

        budget = limit if limit is not None else self.pending()
        take = []
        for entry in self.batch:
            if budget <= 0:
                break
            rows = list(itertools.islice(entry.rows, min(budget, entry.left)))
            entry.left -= len(rows)
            budget -= len(rows)
            take.append((entry, rows))
        self.batch = [entry for entry in self.batch if entry.left > 0]
        return take

    def _new_skipped(self) -> list[dict[str, str]]:
        """The skipped inputs not already listed by an earlier run (a rerun does not list them again)."""
        listed = set(self.manifest["skipped_where"])
        new = []
        for row in self.skipped:
            if row["where"] not in listed:
                listed.add(row["where"])
                new.append(row)
        self.first_skipped = self.first_skipped or next((f"{r['where']}: {r['reason']}" for r in self.skipped), "")
        self.skipped.clear()
        return new

    def _purge_earlier(self, entries: list[_Pending]) -> None:
        """Remove from the written parts the rows of articles tagged before (edited since, or cut short by a
        kill): an article has one set of rows. The manifest marks them partial first, so that a kill
        in between leaves them to be purged and tagged again."""
        ids = {e.article.id for e in entries if e.article.id in self.manifest["done"]
               or e.article.id in self.manifest["partial"]}
        if not ids:
            return
        for article_id in ids:
            self.manifest["done"].pop(article_id, None)
        self.manifest["partial"] = sorted(set(self.manifest["partial"]) | ids)
        _write_manifest(self.output, self.manifest)
        purge_rows(self.output, self.manifest, ids)

    def _write_part(self, sentence_rows: list[dict[str, Any]], article_rows_: list[dict[str, Any]],
                    skipped: list[dict[str, str]], take: list[tuple[_Pending, list[dict[str, Any]]]],
                    finished: list[_Pending]) -> None:
        number = len(self.manifest["parts"])
        name = f"part-{number:05d}.parquet"
        for table, rows in (("sentences", sentence_rows), ("articles", article_rows_), ("skipped", skipped)):
            if rows:
                _write_table(rows, self.output / table / name)
        partial = set(self.manifest["partial"]) | {entry.article.id for entry, _ in take}
        for entry in finished:
            self.manifest["done"][entry.article.id] = content_hash(entry.article.text)
            partial.discard(entry.article.id)
        self.manifest["partial"] = sorted(partial)
        self.manifest["skipped_where"] += [row["where"] for row in skipped]
        self.manifest["parts"].append({"name": name, "articles": len(finished), "sentences": len(sentence_rows),
                                       "skipped": len(skipped)})
        _write_manifest(self.output, self.manifest)
        self.sentences += len(sentence_rows)


def purge_rows(output: Path, manifest: dict[str, Any], ids: set[str]) -> None:
    """Rewrite each listed part of the sentences and articles tables without the rows of `ids`."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for part in manifest["parts"]:
        for table in ("sentences", "articles"):
            path = output / table / part["name"]
            if not path.is_file():
                continue
            rows = pq.read_table(path)
            keep = pc.invert(pc.is_in(rows["article_id"], value_set=_string_array(ids)))
            if pc.all(keep).as_py():
                continue
            kept = rows.filter(keep)
            atomic_file(path, lambda tmp, kept=kept: pq.write_table(kept, tmp))
            part[table] = kept.num_rows


def _string_array(values: set[str]) -> Any:
    import pyarrow as pa

    return pa.array(sorted(values), type=pa.string())


def _open_output(model: str | Path, output: Path, overwrite: bool) -> _Parts:
    """Load the model and open `output` for it: an earlier output of the same model is resumed (its
    unlisted parts, cut short by a kill, removed), anything else refused unless `overwrite`."""
    from trainer.outputs import model_folder
    from trainer.workflows.predict import load_classifier, local_model, model_label

    with local_model(model) as folder:
        classifier = load_classifier(folder)
        run_id = model_folder.read_run(folder).get("run_id")
        validation = (model_folder.read_metrics(folder) or {}).get("validation")
    model_name = model_label(model)
    manifest = _earlier_manifest(output, model_name, run_id, overwrite)
    # The model's confusion matrix on its validation split, as a record: `summarize` does not correct shares with
    # it (those are the errors on the model's own data, not this corpus's; an audit measures these).
    manifest = manifest or {"model": model_name, "run_id": run_id, "labels": list(LABELS), "parts": [], "done": {},
                            "partial": [], "skipped_where": [],
                            "validation_confusion": validation["confusion_matrix"] if validation else None}
    listed = {part["name"] for part in manifest["parts"]}
    for table in TABLES:
        if (output / table).is_symlink():  # its unlisted files are removed below: never a folder elsewhere
            raise ConfigError(f"--output: expected {table}/ to be a folder inside {output}, found a link to "
                              f"{(output / table).resolve()}; choose another folder")
        (output / table).mkdir(parents=True, exist_ok=True)
        for stale in (output / table).iterdir():  # a part the manifest does not list was cut short by a kill
            if stale.name not in listed:
                stale.unlink()
    if manifest["partial"]:  # articles a kill cut short: their rows go, and they are tagged again
        purge_rows(output, manifest, set(manifest["partial"]))
    _write_manifest(output, manifest)
    return _Parts(output, classifier, model_name, run_id, manifest)


def _earlier_manifest(output: Path, model_name: str, run_id: str | None, overwrite: bool) -> dict[str, Any] | None:
    """The manifest of an earlier `trainer tag` of this model into `output`, to resume; None for a new or
    emptied output. Refuses a Spark output, and another model's or other files unless `overwrite`."""
    manifest = _read_manifest(output)
    if manifest is not None and manifest.get("engine") == "spark":
        raise ConfigError(f"--output: expected a new folder or an earlier `trainer tag` output, found {output} written "
                          "by trainer tag-spark, which does not resume; choose another folder")
    if manifest is not None and (manifest["model"], manifest["run_id"]) != (model_name, run_id):
        if not overwrite:
            raise ConfigError(f"--output: expected output of model {model_name!r}, found {output} written by "
                              f"{manifest['model']!r} (run {manifest['run_id']}); pass --overwrite or choose "
                              "another folder")
        for child in output.iterdir():  # the folder's content, not the folder: `output` may be a link to it
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        manifest = None
    if output.exists() and manifest is None and any(output.iterdir()) and not overwrite:
        raise ConfigError(f"--output: expected a new folder or an earlier tag output, found {output} with other "
                          "files; choose another folder")
    return manifest


def read_tables(output: Path, table: str = "sentences", required: bool = False) -> Any:
    """One table of a tag output as a pandas frame (all parts); with `required`, one without parts is a DataError."""
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted((output / table).glob("part-*.parquet"))
    try:
        frames = [pq.read_table(p).to_pandas() for p in parts]
    except (OSError, ValueError) as exc:  # Arrow's errors are ValueErrors, over several lines
        raise DataError(f"{output / table}: expected the Parquet parts trainer tag wrote, found one that cannot be "
                        f"read ({' '.join(str(exc).split())[:200]}); tag again into a new folder") from None
    if required and not any("article_id" in frame.columns for frame in frames):
        raise DataError(f"{output}: expected the {table}/ parts trainer tag wrote (part-*.parquet), found "
                        f"{'none' if not frames else 'tables without article_id'}; tag again into a new folder")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
