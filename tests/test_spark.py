"""`trainer tag-spark` on a real local[2] Spark: the same tables as `trainer tag`, row for row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SEED_ARTICLE
from trainer.labels import LABELS
from trainer.workflows.tagging import read_tables, tag

pyspark = pytest.importorskip("pyspark", reason="pip install -e '.[spark]' (make test installs it)")
BUNDLED = Path(__file__).resolve().parents[1] / "data" / "corpus" / "articles"


def _spark_tables(output: Path, table: str):
    import pandas as pd
    import pyarrow.parquet as pq

    parts = sorted((output / table).glob("part-*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


@pytest.mark.slow
def test_spark_job_writes_what_trainer_tag_writes(trained_sklearn, tmp_path):
    from trainer.workflows.spark_tag import tag_spark

    folder = tmp_path / "articles"
    shutil.copytree(BUNDLED, folder)
    if SEED_ARTICLE.is_file():
        shutil.copy(SEED_ARTICLE, folder / "seed.txt")
    (folder / "page.html").write_text("<html><body><h1>Dam holds</h1><p>Engineers said the dam was safe.</p>"
                                      "<p>The leak could not be independently verified.</p></body></html>")
    (folder / "empty.txt").write_text("\n\n")
    (folder / "latin1.txt").write_bytes("Le ministre a d\xe9clar\xe9 que les pourparlers ont \xe9chou\xe9.\n".encode("latin-1"))
    model = trained_sklearn[1].model_dir
    tag(model, folder, tmp_path / "local", on_bad_encoding="replace", progress=False)
    counts = tag_spark(str(model), str(folder), tmp_path / "spark", master="local[2]", on_bad_encoding="replace")

    key = ["article_id", "sentence_index"]
    local = read_tables(tmp_path / "local").sort_values(key).reset_index(drop=True)
    spark = _spark_tables(tmp_path / "spark", "sentences").sort_values(key).reset_index(drop=True)
    assert len(spark) == len(local) == counts["sentences"] >= 1000
    assert list(spark.columns) == list(local.columns)
    exact = ["article_id", "paragraph_index", "sentence_index", "start", "end", "text", "label", "truncated",
             "model", "run_id"]
    assert spark[exact].astype(str).equals(local[exact].astype(str))
    assert [list(c) for c in spark["rule_cues"]] == [list(c) for c in local["rule_cues"]]
    for label in LABELS:
        assert (spark[f"p_{label}"] - local[f"p_{label}"]).abs().max() < 1e-5

    articles_local = read_tables(tmp_path / "local", "articles").sort_values("article_id").reset_index(drop=True)
    articles_spark = _spark_tables(tmp_path / "spark", "articles").sort_values("article_id").reset_index(drop=True)
    assert list(articles_spark.columns) == list(articles_local.columns)
    assert articles_spark.astype(str).equals(articles_local.astype(str))
    skipped_local = read_tables(tmp_path / "local", "skipped")
    skipped_spark = _spark_tables(tmp_path / "spark", "skipped")
    assert sorted(skipped_spark["reason"]) == sorted(skipped_local["reason"]) == ["empty_article"]
    assert (tmp_path / "spark" / "sentences" / "_SUCCESS").is_file()
    import json

    manifest = json.loads((tmp_path / "spark" / "manifest.json").read_text())
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())
    assert manifest["validation_confusion"] == local_manifest["validation_confusion"]  # summarize adjusts alike
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".spark.")]  # no staging folder left
    with pytest.raises(Exception, match="written by trainer tag-spark"):
        tag(model, folder, tmp_path / "spark", progress=False)


@pytest.mark.slow
def test_a_json_lines_table_keeps_its_cell_types_on_spark_as_in_trainer_tag(trained_sklearn, tmp_path):
    """Spark's JSON reader turns a number or an object in the text column into text ("12345"); tag-spark reads
    each line itself, so such a row is skipped with `trainer tag`'s reason instead of being tagged."""
    import json

    from trainer.workflows.spark_tag import tag_spark

    rows = [{"id": "a", "text": "The mayor said the bridge would reopen.", "outlet": "Daily"},
            {"id": "b", "text": 12345, "outlet": "Daily"},
            {"id": "c", "text": {"body": "Officials confirmed it."}, "outlet": {"name": "Wire"}},
            {"id": None, "text": "No id here."},
            {"id": "d", "text": "Rebels reportedly seized the town.", "outlet": 7}]
    table = tmp_path / "articles.jsonl"
    table.write_text("\n".join(json.dumps(r) for r in rows) + "\n[1, 2]\n\n")
    model = trained_sklearn[1].model_dir
    tag(model, table, tmp_path / "local", id_column="id", progress=False)
    tag_spark(str(model), str(table), tmp_path / "spark", master="local[2]", id_column="id")

    reasons = {name: sorted(r.split(":")[0] for r in frame["reason"]) for name, frame in
               (("local", read_tables(tmp_path / "local", "skipped")),
                ("spark", _spark_tables(tmp_path / "spark", "skipped")))}
    assert reasons["spark"] == reasons["local"] == ["no_id", "not_text", "not_text", "unreadable"]
    local = read_tables(tmp_path / "local", "articles").sort_values("article_id").reset_index(drop=True)
    spark = _spark_tables(tmp_path / "spark", "articles").sort_values("article_id").reset_index(drop=True)
    assert list(spark["article_id"]) == list(local["article_id"]) == ["a", "d"]
    assert list(spark["outlet"]) == list(local["outlet"]) == ["Daily", "7"]
