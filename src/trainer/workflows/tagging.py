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
import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.data.language import ENGLISH, MIN_CONFIDENCE, detect, warning
from trainer.infra.atomic import atomic_file
from trainer.infra.locks import output_lock
from trainer.errors import ConfigError, DataError
from trainer.labels import LABELS

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TABLES = ("sentences", "articles", "skipped")
# Sentences per part: a kill loses at most one part's work.
PART_SENTENCES = 20_000
FORMATS = ("parquet", "csv", "xlsx")  # the parts are Parquet; csv and xlsx add whole tables beside them
WORKBOOK = "tagged.xlsx"
EXCEL_MAX_ROWS = 1_048_575  # an Excel sheet's rows, less the header


@dataclass
class Article:
    """One input article: its id, text, metadata columns and where it came from."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    where: str = ""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def iter_articles(path: Path, text_column: str = "text", id_column: str | None = None,
                  on_bad_encoding: str = "error", skipped: list[dict[str, str]] | None = None) -> Iterator[Article]:
    """Every article of the input, with the metadata columns of a table passed through."""
    from trainer.config import load_data_config
    from trainer.data.sources import (
        HTML_SUFFIXES,
        TABLE_SUFFIXES,
        TEXT_SUFFIXES,
        article_folder,
        read_exclusions,
        read_table,
    )

    skipped = skipped if skipped is not None else []
    if not path.exists():
        raise DataError(f"{path}: expected a folder of articles, a JSONL/CSV/Parquet file or a data config, "
                        "found nothing there (check the path)")
    if path.suffix.lower() in (".yaml", ".yml"):
        folders = [(article_folder(s), read_exclusions(s.exclude_articles)) for s in load_data_config(path).sources]
    else:
        folders = [(path, set())]
    for folder, excluded in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()) if folder.is_dir() else [folder]
        for file in files:
            suffix = file.suffix.lower()
            if not file.exists():
                skipped.append({"where": str(file), "reason": "dangling_link"})
                continue
            if suffix in TABLE_SUFFIXES:
                for number, (where, row) in enumerate(read_table(file)):
                    if text_column not in row:
                        raise DataError(f"{where}: expected a '{text_column}' column, found {sorted(row)}; "
                                        "set --text-column")
                    if id_column and id_column not in row:
                        raise DataError(f"{where}: expected an '{id_column}' column, found {sorted(row)}")
                    article = str(row[id_column]) if id_column else f"{file.stem}-{number}"
                    meta = {k: None if v is None else str(v) for k, v in row.items()
                            if k not in (text_column, id_column)}
                    yield Article(article, str(row[text_column] or ""), meta, where)
            elif suffix in TEXT_SUFFIXES + HTML_SUFFIXES:
                if file.stem in excluded:
                    continue
                try:
                    yield file_article(file, file.read_bytes(), on_bad_encoding)
                except OSError as exc:
                    skipped.append({"where": str(file), "reason": f"unreadable: {type(exc).__name__}"})
                except DataError as exc:
                    skipped.append({"where": str(file), "reason": undecodable(exc)})


def file_article(path: Path, data: bytes, on_bad_encoding: str) -> Article:
    """An article file's bytes as build-data reads them (decoded, HTML turned into text), with the
    `path` and `decoded_with_replacement` metadata columns. `trainer tag` reads the bytes from disk;
    the Spark job (`spark_tag.py`) gets them from Spark's binaryFile source."""
    from trainer.data.sources import HTML_SUFFIXES, SourceResult, decode_article, html_to_text

    result = SourceResult()
    text = decode_article(data, path, on_bad_encoding, result)
    if path.suffix.lower() in HTML_SUFFIXES:
        text = html_to_text(text)
    replaced = str(bool(result.skipped.get("decoded_with_replacement")))
    return Article(path.stem, text, {"path": str(path), "decoded_with_replacement": replaced}, str(path))


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
    """The `skipped` table's reason for a file that is not UTF-8 (with on_bad_encoding: error)."""
    return f"undecodable: {str(error)[:200]}"


def _read_manifest(output: Path) -> dict[str, Any] | None:
    path = output / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    atomic_file(output / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8"))


def _write_table(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    atomic_file(path, lambda tmp: pq.write_table(pa.Table.from_pylist(rows), tmp))


def split_article(article: Article, labeler: Any) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The article's sentences as rows of the `sentences` table, before the model's columns, with the
    text the model reads (`model_input`); and what cleaning removed. `trainer tag` and the Spark job
    (`spark_tag.py`) both split with this."""
    from trainer.data.sentences import line_starts, sentence_spans

    sentences, removed = sentence_spans(article.text)
    starts = line_starts(article.text)
    rows = [{"article_id": article.id, "paragraph_index": bisect.bisect_right(starts, s.start) - 1,
             "sentence_index": index, "start": s.start, "end": s.end, "text": article.text[s.start:s.end],
             "rule_cues": labeler.label(s.text).fired, "model_input": s.text}
            for index, s in enumerate(sentences)]
    return rows, removed


SENTENCE_COLUMNS = ("article_id", "paragraph_index", "sentence_index", "start", "end", "text", "label",
                    *(f"p_{k}" for k in LABELS), "truncated", "rule_cues", "model", "run_id")


def sentence_row(row: dict[str, Any], model_name: str, run_id: str | None) -> dict[str, Any]:
    """A `split_article` row with the model's columns, in the table's column order."""
    full = {**row, "model": model_name, "run_id": run_id}
    return {column: full[column] for column in SENTENCE_COLUMNS}


def article_row(article: Article, labels: Counter[str], removed: Counter[str]) -> dict[str, Any]:
    """The `articles` table's row: counts and shares of each label, cleaning, language, metadata columns."""
    n = sum(labels.values())
    language = detect(article.text)
    return {
        "article_id": article.id, "content_sha256": content_hash(article.text), "n_sentences": n,
        **{f"n_{k}": labels[k] for k in LABELS}, **{f"share_{k}": labels[k] / n if n else 0.0 for k in LABELS},
        "cleaning_removed": json.dumps(dict(removed)), "language": language.code,
        "language_confidence": language.confidence, **{k: v for k, v in article.meta.items()},
    }


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
    split_workers: int | None = None,
    format: str = "parquet",
) -> TagResult:
    """Tag every sentence of `input` with `model` into Parquet parts under `output` (resumable); with
    `format` csv or xlsx, the whole tables too, in that format, once every article is tagged.

    `split_workers`: processes that clean and split articles and find the rule cues while the model runs
    (default: none on the CPU, where the model needs the cores; on a GPU the free cores less one).

    One `tag` writes into an output at a time (`.locks/NAME.lock` beside it): a second would number its
    parts like the first's and remove the part the first is writing.
    """
    if format not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, found {format!r}")
    with output_lock(output, f"--output {output}", "trainer tag into it"):
        result = _tag(model, input, output, text_column, id_column, overwrite, part_sentences, on_bad_encoding,
                      progress, split_workers)
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

    def write(tmp: Path) -> None:
        import pandas as pd

        with pd.ExcelWriter(tmp, engine="openpyxl") as workbook:
            for table, frame in frames.items():
                frame.to_excel(workbook, sheet_name=table, index=False)

    atomic_file(output / WORKBOOK, write)
    return [output / WORKBOOK]


def _flat(frame: Any) -> Any:
    """List columns (the rule cues) as "; "-joined text, which a spreadsheet cell holds."""
    for column in frame.columns:
        if len(frame) and frame[column].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
            frame[column] = frame[column].map(lambda v: "; ".join(map(str, v)) if v is not None else "")
    return frame


def _tag(
    model: str | Path, input: Path, output: Path, text_column: str, id_column: str | None, overwrite: bool,
    part_sentences: int, on_bad_encoding: str, progress: bool, split_workers: int | None,
) -> TagResult:
    from trainer.infra.progress import bar as progress_bar
    from trainer.models.streaming import default_workers

    parts = _open_output(model, output, overwrite)
    if split_workers is None:
        on_gpu = getattr(getattr(parts.classifier.backend, "device", None), "type", "cpu") == "cuda"
        split_workers = default_workers() if on_gpu else 0
    counts = {"articles": 0, "reused": 0}
    pending = 0
    # Counted as the model labels them (splitting is quick, the model is not), against the inputs' count.
    parts.progress = progress_bar(total=count_inputs(input), desc="tagging", unit="article", disable=not progress,
                                  mininterval=1.0)
    articles = iter_articles(input, text_column, id_column, on_bad_encoding, parts.skipped)
    fresh = _fresh(articles, parts.manifest["done"], counts, parts.progress)
    try:
        for article, (rows, removed) in split_articles(fresh, split_workers):
            if not rows:
                parts.skipped.append({"where": article.where, "reason": "empty_article"})
                parts.progress.update(1)
                continue
            parts.batch.append((article, rows, removed))
            counts["articles"] += 1
            pending += len(rows)
            if pending >= part_sentences:
                parts.flush()
                pending = 0
        total_skipped = len(parts.skipped) + sum(p["skipped"] for p in parts.manifest["parts"])
        parts.flush()
    finally:
        parts.close()
    parts.progress.close()
    if counts["articles"] == 0 and counts["reused"] == 0:
        raise DataError(f"{input}: expected articles to tag, found none that could be read "
                        f"({total_skipped} skipped)")
    if parts.non_english:
        log.warning("%s", warning(parts.non_english, counts["articles"], "articles tagged"))
    return TagResult(output, counts["articles"], parts.sentences, total_skipped, counts["reused"],
                     dict(parts.non_english))


def _fresh(articles: Iterator[Article], done: dict[str, str], counts: dict[str, int], progress: Any) -> Iterator[Article]:
    """The articles not tagged already (same id and content hash), refusing a repeated id."""
    seen: dict[str, str] = {}
    for article in articles:
        if article.id in seen:
            raise DataError(f"expected unique article ids, found {article.id!r} at {seen[article.id]} and at "
                            f"{article.where}; set --id-column or make the ids unique")
        seen[article.id] = article.where
        if done.get(article.id) == content_hash(article.text):
            counts["reused"] += 1
            progress.update(1)
            continue
        yield article


# Articles handed to the splitting processes at a time: the next window is split while this one is tagged.
SPLIT_WINDOW = 512
_worker_labeler: Any = None


def split_articles(articles: Iterator[Article], workers: int) -> Iterator[tuple[Article, tuple[list[dict[str, Any]],
                                                                                            Counter[str]]]]:
    """`(article, split_article(article))` in input order; in `workers` processes (0: here), one window of
    articles split ahead of the caller."""
    from itertools import islice

    from trainer.data.rules import RuleLabeler, rules_path

    if not workers:
        labeler = RuleLabeler.from_yaml(rules_path(None))
        for article in articles:
            yield article, split_article(article, labeler)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers, initializer=_start_splitter) as pool:
        window = list(islice(articles, SPLIT_WINDOW))
        pending = pool.map_async(_split_here, window, chunksize=8) if window else None
        while pending is not None:
            results, current = pending.get(), window
            window = list(islice(articles, SPLIT_WINDOW))
            pending = pool.map_async(_split_here, window, chunksize=8) if window else None
            yield from zip(current, results)


def _start_splitter() -> None:
    from trainer.data.rules import RuleLabeler, rules_path

    global _worker_labeler
    _worker_labeler = RuleLabeler.from_yaml(rules_path(None))


def _split_here(article: Article) -> tuple[list[dict[str, Any]], Counter[str]]:
    return split_article(article, _worker_labeler)


@dataclass
class _Parts:
    """An open tag output: the model that tags, the manifest, and the part in progress (its articles
    with their sentence rows, and the inputs skipped since the last part)."""

    output: Path
    classifier: Any
    model_name: str
    run_id: str | None
    manifest: dict[str, Any]
    batch: list[tuple[Article, list[dict[str, Any]], Counter[str]]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    non_english: Counter[str] = field(default_factory=Counter)  # articles confidently in another language
    sentences: int = 0  # in the parts written by this run
    progress: Any = None  # a progress bar (infra/progress.py), advanced as articles are labeled
    _writer: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tag-writer"))
    _writing: Future[None] | None = None  # the part being written

    def flush(self) -> None:
        """Tag the batch and write it as the next part of each table; then list the part in the manifest."""
        if not self.batch and not self.skipped:
            return
        texts = [row["model_input"] for _, rows, _ in self.batch for row in rows]
        # Chunks small enough on the CPU that the progress line moves within a part.
        predictions = iter(self.classifier.iter_predict(iter(texts), chunk_size=self.classifier.progress_chunk()))
        sentence_rows, article_rows = [], []
        for article, rows, removed in self.batch:
            for row in rows:
                p = next(predictions)
                row.update(label=p.label, **{f"p_{k}": v for k, v in p.probabilities.items()}, truncated=p.truncated)
                sentence_rows.append(sentence_row(row, self.model_name, self.run_id))
            article_rows.append(article_row(article, Counter(row["label"] for row in rows), removed))
            if self.progress is not None:
                self.progress.set_postfix(sentences=self.sentences + len(sentence_rows), refresh=False)
                self.progress.update(1)
            if article_rows[-1]["language"] != ENGLISH and article_rows[-1]["language_confidence"] >= MIN_CONFIDENCE:
                self.non_english[article_rows[-1]["language"]] += 1
        number = len(self.manifest["parts"])
        name = f"part-{number:05d}.parquet"
        tables = (("sentences", sentence_rows), ("articles", article_rows), ("skipped", list(self.skipped)))
        for article, _, _ in self.batch:
            self.manifest["done"][article.id] = content_hash(article.text)
        self.manifest["parts"].append({"name": name, "articles": len(self.batch), "sentences": len(sentence_rows),
                                       "skipped": len(self.skipped)})
        # Written by one thread while the next part is tagged, in order: the tables, then the manifest that
        # lists them (a copy of it as it is now), so a kill still loses at most the part in progress.
        manifest = json.dumps(self.manifest, indent=1)
        self.wait()
        self._writing = self._writer.submit(self._write_part, name, tables, manifest)
        self.sentences += len(sentence_rows)
        self.batch.clear()
        self.skipped.clear()

    def _write_part(self, name: str, tables: tuple[tuple[str, list[dict[str, Any]]], ...], manifest: str) -> None:
        for table, rows in tables:
            if rows:
                _write_table(rows, self.output / table / name)
        atomic_file(self.output / MANIFEST, lambda tmp: tmp.write_text(manifest, encoding="utf-8"))

    def wait(self) -> None:
        """Until the part being written is written (its error, if any, raised here)."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()

    def close(self) -> None:
        """Wait for the last part and stop the writing thread."""
        try:
            self.wait()
        finally:
            self._writer.shutdown(wait=True)


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
                            "validation_confusion": validation["confusion_matrix"] if validation else None}
    listed = {part["name"] for part in manifest["parts"]}
    for table in TABLES:
        (output / table).mkdir(parents=True, exist_ok=True)
        for stale in (output / table).iterdir():  # a part the manifest does not list was cut short by a kill
            if stale.name not in listed:
                stale.unlink()
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
        shutil.rmtree(output)
        manifest = None
    if output.exists() and manifest is None and any(output.iterdir()) and not overwrite:
        raise ConfigError(f"--output: expected a new folder or an earlier tag output, found {output} with other "
                          "files; choose another folder")
    return manifest


def read_tables(output: Path, table: str = "sentences") -> Any:
    """One table of a tag output as a pandas frame (all parts)."""
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted((output / table).glob("part-*.parquet"))
    frames = [pq.read_table(p).to_pandas() for p in parts]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
