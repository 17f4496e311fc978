"""`trainer tag-spark`: the same tagging as `trainer tag`, as a Spark job.

The model is the tracked one: `mlflow.pyfunc.spark_udf` loads the logged pyfunc model (a
`runs:/` or `models:/` URI, or the run a model folder names) on every executor. Articles are read
by Spark (a folder through the `binaryFile` source, or a Parquet/JSONL/CSV table), decoded, cleaned
and split in a `mapInPandas` UDF with the very functions `trainer tag` uses
(`tagging.split_article`), so the two write the same `sentences`, `articles` and `skipped` tables,
row for row. Each table is written by Spark's committer (a `_SUCCESS` file when whole) into
`<output>/<table>/`; a job that fails leaves no table under its real name.

On a cluster (every node needs the project installed, e.g. from the same lock file, and `--output`
must be a folder that the driver and every executor see at the same path, such as a shared mount;
`--input` may be any URI Spark reads):

    spark-submit --master spark://HOST:7077 src/trainer/workflows/spark_tag.py \\
        --model models:/sourcing@champion --input hdfs:///corpora/news --output /shared/tagged/news

`trainer tag-spark ... --master local[4]` runs the same job in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainer.infra.atomic import atomic_folder
from trainer.errors import ConfigError, DataError, TrainerError
from trainer.labels import LABELS
from trainer.workflows.tag_input import check_input
from trainer.workflows.tagging import MANIFEST, TABLES


def model_uri(model: str) -> tuple[str, str | None, str | None]:
    """(pyfunc URI, tracking URI, run id) for an MLflow URI or a model folder that names its run."""
    from trainer.outputs import model_folder
    from trainer.workflows.predict import is_mlflow_uri
    from trainer.outputs.tracking import MODEL_ARTIFACT, logged_model_run_id

    if is_mlflow_uri(model):
        try:  # runs:/ and models:/ alike: the run that logged the model
            run_id = logged_model_run_id(model)
        except Exception:  # noqa: BLE001 - checked again, with its own error, by _check_model
            run_id = model.split("/")[1] if model.startswith("runs:/") else None
        return model, None, run_id
    run = model_folder.read_run(Path(model))
    if not run.get("run_id"):
        raise ConfigError(f"--model: expected an MLflow model URI or a model folder logged to MLflow, found {model} "
                          "without a run (run.json); train it with tracking on, or pass runs:/<id>/<run name>")
    store = model_folder.training_store(Path(model))  # in the project the folder lies in now
    return f"runs:/{run['run_id']}/{run.get('model_name', MODEL_ARTIFACT)}", store, run["run_id"]


# Warnings that ask nothing of the user, on the driver and (through the environment) in Spark's Python
# workers: pyspark 4.3 warns on every UDF that it "does not yet fully support pandas >= 3.0.0" (the
# test checks the output against `trainer tag` under pandas 3), and MLflow that env_manager="local"
# does not rebuild the training environment (the project's lock file is that environment).
_PANDAS_WARNING = "PySpark does not yet fully support pandas"


def _quiet(master: str | None) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    extra = f"ignore:{_PANDAS_WARNING}:FutureWarning"
    current = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = f"{current},{extra}" if current and extra not in current else current or extra
    logging.getLogger("mlflow.pyfunc").addFilter(lambda record: "env_manager" not in record.getMessage())
    if (master or "local").startswith("local"):  # no --master: local[*], unless spark-submit set one
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # one machine: no guessing at interfaces
        # Spark starts its Python workers with `python3` from PATH unless told otherwise: on one machine
        # they must be this interpreter (this venv, where the project is installed).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def _validation_confusion(model: str) -> Any:
    from trainer.outputs import model_folder
    from trainer.workflows.predict import local_model

    with local_model(model) as folder:
        validation = (model_folder.read_metrics(folder) or {}).get("validation")
    return validation["confusion_matrix"] if validation else None


def _check_model(uri: str) -> None:
    """Load the logged model once on the driver: a URI that does not resolve, or a model logged before
    the pyfunc reported `truncated`, fails here with one line instead of inside every executor."""
    from trainer.outputs.tracking import import_pyfunc

    try:
        frame = import_pyfunc().load_model(uri).predict(["The minister said talks failed."])
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds for a URI it cannot load
        raise ConfigError(f"--model: expected a logged pyfunc model at {uri}, found none that loads "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None
    expected = ["label", *(f"p_{k}" for k in LABELS), "truncated"]
    if list(frame.columns) != expected:
        raise ConfigError(f"--model: expected a logged model that returns {expected}, found {list(frame.columns)} "
                          "(logged by an earlier version); retrain it, or log it again, to tag on Spark")


_ROW_TYPE = (("kind", "string"), ("article_id", "string"), ("paragraph_index", "long"), ("sentence_index", "long"),
             ("start", "long"), ("end", "long"), ("text", "string"), ("rule_cues", "array<string>"),
             ("model_input", "string"), ("content_sha256", "string"), ("n_sentences", "long"),
             ("cleaning_removed", "string"), ("language", "string"), ("language_confidence", "double"),
             ("where", "string"), ("reason", "string"))


def _columns(meta_columns: list[str]) -> list[str]:
    return [name for name, _ in _ROW_TYPE] + [f"meta_{c}" for c in meta_columns]


def _schema(meta_columns: list[str]) -> str:
    """One row type for all three tables (a `kind` column tells them apart), so that articles are
    split once and the job's output is cached once."""
    return ", ".join([f"{name} {kind}" for name, kind in _ROW_TYPE] + [f"`meta_{c}` string" for c in meta_columns])


def _no_id(value: Any) -> bool:
    """A missing, NaN or blank article id (pandas gives a null as None or NaN)."""
    return value is None or (isinstance(value, float) and value != value) or not str(value).strip()


def _split_partitions(batches: Iterator[Any], meta_columns: list[str], on_bad_encoding: str,
                      source: str, text_column: str = "text", id_column: str | None = None) -> Iterator[Any]:
    """mapInPandas: article rows in, sentence/article/skipped rows out (see `_schema`). `source` says what a row
    holds: "files" (a file's path and bytes), "json" (one line of a JSON Lines table, parsed here so that a cell
    keeps its JSON type and is checked as `trainer tag` checks it) or "table" (Spark's columns)."""
    import pandas as pd

    from trainer.data.language import detect
    from trainer.data.rules import RuleLabeler, rules_path
    from trainer.workflows.tagging import Article, content_hash, file_article, split_article, undecodable

    labeler = RuleLabeler.from_yaml(rules_path(None))
    columns = _columns(meta_columns)
    empty = dict.fromkeys(columns)
    for frame in batches:
        out: list[dict[str, Any]] = []
        for record in frame.to_dict("records"):
            if source == "json":
                if not str(record["line"] or "").strip():
                    continue  # a blank line, as `trainer tag` reads JSON Lines
                article, reason = _json_article(record["line"], record["where"], meta_columns, text_column,
                                                id_column)
                if article is None:
                    out.append({**empty, "kind": "skipped", "where": record["where"], "reason": reason})
                    continue
            elif source == "files":
                path = Path(record["path"].removeprefix("file:"))
                try:
                    article = file_article(path, bytes(record["content"]), on_bad_encoding)
                except DataError as exc:
                    out.append({**empty, "kind": "skipped", "article_id": path.stem, "where": str(path),
                                "reason": undecodable(exc)})
                    continue
            elif _no_id(record["article_id"]):  # as `trainer tag` skips it (a null was the article 'nan')
                out.append({**empty, "kind": "skipped", "where": record["where"],
                            "reason": f"no_id: expected an article id, found {json.dumps(record['article_id'])}"})
                continue
            else:
                meta = {c: record[f"meta_{c}"] for c in meta_columns}
                article = Article(str(record["article_id"]), str(record["text"] or ""), meta, record["where"])
            rows, removed = split_article(article, labeler)
            metadata = {f"meta_{k}": None if v is None else str(v) for k, v in article.meta.items()}
            if not rows:
                out.append({**empty, **metadata, "kind": "skipped", "article_id": article.id,
                            "where": article.where, "reason": "empty_article"})
                continue
            out.extend({**empty, **metadata, **row, "kind": "sentence"} for row in rows)
            language = detect(article.text)  # as `trainer tag` records it
            out.append({**empty, **metadata, "kind": "article", "article_id": article.id,
                        "content_sha256": content_hash(article.text), "n_sentences": len(rows),
                        "cleaning_removed": json.dumps(dict(removed)), "language": language.code,
                        "language_confidence": language.confidence, "where": article.where})
        yield pd.DataFrame(out, columns=columns)


def _json_article(line: str, where: str, meta_columns: list[str], text_column: str,
                  id_column: str | None) -> tuple[Any, str]:
    """(the article of one JSON Lines row, "") or (None, why it is skipped), checked as `trainer tag` checks it."""
    from trainer.workflows.tag_input import bad_row, metadata_cell
    from trainer.workflows.tagging import Article

    try:
        row = json.loads(line)
    except ValueError as exc:
        return None, f"unreadable: expected one JSON object per line, found {exc}"
    if not isinstance(row, dict):
        return None, f"unreadable: expected one JSON object per line, found a JSON {type(row).__name__}"
    reason = bad_row(row, text_column, id_column)
    if reason:
        return None, reason
    meta = {c: metadata_cell(row.get(c)) for c in meta_columns}
    return Article(str(row[id_column]), row[text_column] or "", meta, where), ""


def _read_articles(spark: Any, input: str, text_column: str, id_column: str | None) -> tuple[Any, list[str], str]:
    """(DataFrame, metadata columns, what a row holds: see `_split_partitions`) for a folder or a table."""
    from pyspark.sql import functions as F

    from trainer.data.sources import HTML_SUFFIXES, TEXT_SUFFIXES

    suffix = Path(input).suffix.lower()
    if suffix in (".parquet", ".jsonl", ".json", ".csv"):
        if not id_column:
            raise ConfigError("--id-column: expected a column naming each article for a table on Spark (its rows "
                              "have no order to number them by), found none; pass --id-column")
        reader = {".parquet": spark.read.parquet, ".jsonl": spark.read.json, ".json": spark.read.json,
                  ".csv": lambda p: spark.read.option("header", True).option("multiLine", True)
                  .option("escape", '"').csv(p)}[suffix]
        frame = reader(input)
        for column in (text_column, id_column):
            if column not in frame.columns:
                raise DataError(f"{input}: expected a '{column}' column, found {sorted(frame.columns)}; "
                                "set --text-column / --id-column")
        kind = frame.schema[text_column].dataType.simpleString()
        if suffix == ".parquet" and kind != "string":  # `trainer tag` skips each such row as not_text
            raise DataError(f"{input}: expected text in the '{text_column}' column, found {kind} in every row; "
                            "set --text-column to the column of article text")
        meta = [c for c in frame.columns if c not in (text_column, id_column, "_corrupt_record")]
        if suffix in (".jsonl", ".json"):  # Spark's JSON reader turns 12345 or {"body": ...} into text: parse lines
            lines = spark.read.text(input).select(F.col("value").alias("line"), F.lit(input).alias("where"))
            return lines, meta, "json"
        frame = frame.select(
            F.col(id_column).cast("string").alias("article_id"), F.col(text_column).cast("string").alias("text"),
            F.lit(input).alias("where"), *[F.col(c).cast("string").alias(f"meta_{c}") for c in meta])
        return frame, meta, "table"
    frame = (spark.read.format("binaryFile").option("recursiveFileLookup", True).load(input)
             .select("path", "content"))
    suffixes = "|".join(s.lstrip(".") for s in TEXT_SUFFIXES + HTML_SUFFIXES)  # what `trainer tag` reads
    frame = frame.filter(F.lower(F.col("path")).rlike(rf"\.({suffixes})$"))
    return frame, ["path", "decoded_with_replacement"], "files"


def tag_spark(model: str, input: str, output: Path, master: str | None = None, text_column: str = "text",
              id_column: str | None = None, on_bad_encoding: str = "error", overwrite: bool = False) -> dict[str, int]:
    """Tag `input` on Spark into `output`/{sentences,articles,skipped}; returns row counts per table."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from trainer.outputs.tracking import spark_udf, use_tracking_uri
    from trainer.workflows.predict import model_label
    from trainer.workflows.tagging import SENTENCE_COLUMNS

    if output.exists() and any(output.iterdir()) and not overwrite:
        raise ConfigError(f"--output: expected a new folder, found {output} with files; pass --overwrite or choose "
                          "another folder")
    if Path(input).suffix.lower() in (".yaml", ".yml"):
        raise ConfigError(f"--input: expected a folder of articles or a Parquet/JSONL/CSV table on Spark, found the "
                          f"data config {input}; pass its article folder (and drop excluded articles first), or use "
                          "trainer tag")
    if "://" not in input:  # a local input: missing, or a FIFO, is one line before Spark starts
        check_input(Path(input))
    uri, tracking_uri, run_id = model_uri(model)
    if tracking_uri:
        use_tracking_uri(tracking_uri)  # in the environment too: executors resolve runs:/ URIs
    _check_model(uri)
    _quiet(master)
    builder = SparkSession.builder.appName("trainer-tag")
    if master:
        builder = builder.master(master)
    spark = _start(builder, master)
    spark.sparkContext.setLogLevel(os.environ.get("TRAINER_SPARK_LOG_LEVEL", "ERROR"))
    try:
        articles, meta, source = _read_articles(spark, input, text_column, id_column)
        schema = _schema(meta)
        rows = articles.mapInPandas(
            lambda batches: _split_partitions(batches, meta, on_bad_encoding, source, text_column, id_column),
            schema).cache()
        duplicates = (rows.filter("kind = 'article'").groupBy("article_id")
                      .agg(F.count("*").alias("n"), F.collect_list("where").alias("wheres")).filter("n > 1").limit(1)
                      .collect())
        if duplicates:
            first = duplicates[0]
            raise DataError(f"expected unique article ids, found {first['article_id']!r} at {first['wheres'][0]} and "
                            f"at {first['wheres'][1]}; set --id-column or make the ids unique")
        predict = spark_udf(
            spark, uri,
            result_type=", ".join([*(f"{c} {'string' if c == 'label' else 'double'}" for c in
                                     ("label", *(f"p_{k}" for k in LABELS))), "truncated boolean"]))
        name = model_label(model)
        sentences = (rows.filter("kind = 'sentence'")
                     .withColumn("prediction", predict(F.struct(F.col("model_input").alias("text"))))
                     .select("*", "prediction.*")
                     .withColumn("model", F.lit(name)).withColumn("run_id", F.lit(run_id).cast("string"))
                     .select(*SENTENCE_COLUMNS))
        with atomic_folder(output) as staging:  # renamed into place only when all three tables are whole
            _write_tables(spark, staging, rows, sentences, meta)
            result = {table: spark.read.parquet(str(staging / table)).count() for table in TABLES}
            if result["articles"] == 0:
                raise DataError(f"{input}: expected articles to tag, found none that could be read "
                                f"({result['skipped']} skipped)")
            manifest = {"model": name, "run_id": run_id, "model_uri": uri, "labels": list(LABELS), "engine": "spark",
                        "master": spark.sparkContext.master, **{f"n_{k}": v for k, v in result.items()},
                        # a record of the model's errors on its own validation split, as for `trainer tag`
                        "validation_confusion": _validation_confusion(model)}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        return result
    finally:
        spark.stop()


def _start(builder: Any, master: str | None) -> Any:
    """The Spark session; a master Spark cannot start (`--master nonsense://x`) is one line."""
    from pyspark.errors import PySparkException

    try:
        return (builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    except PySparkException as exc:
        raise ConfigError(f"--master: expected a Spark master that starts (local[*], spark://HOST:7077, yarn), found "
                          f"{master or 'the default'} fails ({str(exc).splitlines()[0][:160]}); check --master and "
                          "SPARK_HOME") from None


def _write_tables(spark: Any, staging: Path, rows: Any, sentences: Any, meta: list[str]) -> None:
    """The sentences, articles (counts from the written sentences) and skipped tables into `staging`."""
    from pyspark.sql import functions as F

    sentences.write.parquet(str(staging / "sentences"))
    written = spark.read.parquet(str(staging / "sentences"))
    counts = written.groupBy("article_id").pivot("label", list(LABELS)).count().na.fill(0)
    n = F.col("n_sentences")
    article_table = (rows.filter("kind = 'article'").join(counts, "article_id", "left")
                     .select("article_id", "content_sha256", "n_sentences",
                             *[F.coalesce(F.col(k), F.lit(0)).alias(f"n_{k}") for k in LABELS],
                             *[(F.coalesce(F.col(k), F.lit(0)) / n).alias(f"share_{k}") for k in LABELS],
                             "cleaning_removed", "language", "language_confidence",
                             *[F.col(f"`meta_{c}`").alias(c) for c in meta]))
    article_table.write.parquet(str(staging / "articles"))
    rows.filter("kind = 'skipped'").select("where", "reason").write.parquet(str(staging / "skipped"))


def main(argv: list[str] | None = None) -> int:
    """`spark-submit .../spark_tag.py --model URI --input PATH --output DIR`, the cluster entry point."""
    parser = argparse.ArgumentParser(prog="spark_tag", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except TrainerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(args.output, result))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MLflow model URI (runs:/, models:/) or a logged model folder")
    parser.add_argument("--input", required=True, help="a folder of .txt/.md/.html articles or a Parquet/JSONL/CSV "
                        "table (with --id-column)")
    parser.add_argument("--output", required=True, type=Path, help="folder for sentences/, articles/, skipped/")
    parser.add_argument("--master", default=None, help="Spark master (local[2], spark://HOST:7077, yarn); "
                        "default: what spark-submit or the environment sets, else local[*]")
    parser.add_argument("--text-column", default="text", help="the table's column of article text")
    parser.add_argument("--id-column", default=None, help="the table's column naming each article (needed for a table)")
    parser.add_argument("--on-bad-encoding", choices=["error", "replace"], default="replace",
                        help="files that are not UTF-8: skip them (counted) or decode with replacement characters")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def run(args: argparse.Namespace) -> dict[str, int]:
    return tag_spark(args.model, args.input, args.output, master=args.master, text_column=args.text_column,
                     id_column=args.id_column, on_bad_encoding=args.on_bad_encoding, overwrite=args.overwrite)


def summary(output: Path, result: dict[str, int]) -> str:
    return (f"{result['articles']} articles, {result['sentences']} sentences tagged on Spark; "
            f"{result['skipped']} inputs skipped (see skipped/): {output}")


if __name__ == "__main__":
    sys.exit(main())
