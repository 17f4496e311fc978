"""`trainer tag`: Parquet tables of every sentence, offsets that point at the sentence, resumable runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, SEED_ARTICLE
from trainer.data.cleaning import clean_article
from trainer.data.sentences import article_sentences, normalize
from trainer.data.sources import html_to_text
from trainer.errors import ConfigError, DataError
from trainer.labels import LABELS
from trainer.workflows.tagging import read_tables, tag

KILL_AT = Path(__file__).with_name("kill_at.py")


def _articles(tmp_path: Path) -> Path:
    folder = tmp_path / "articles"
    shutil.copytree(CORPUS / "articles", folder)
    if SEED_ARTICLE.is_file():
        shutil.copy(SEED_ARTICLE, folder / "seed.txt")
    (folder / "page.html").write_text("<html><body><h1>Dam holds</h1><p>Engineers said the dam was safe.</p>"
                                      "<p>The leak could not be independently verified.</p></body></html>")
    return folder


def test_offsets_point_at_the_sentence_build_data_splits(trained_sklearn, tmp_path):
    folder = _articles(tmp_path)
    result = tag(trained_sklearn[1].model_dir, folder, tmp_path / "out", progress=False)
    sentences = read_tables(tmp_path / "out")
    articles = read_tables(tmp_path / "out", "articles")
    assert result.sentences == len(sentences) > 50 and result.articles == len(articles) == len(list(folder.iterdir()))
    for article_id, rows in sentences.groupby("article_id"):
        path = next(folder.glob(f"{article_id}.*"))
        raw = path.read_text()
        text = html_to_text(raw) if path.suffix == ".html" else raw
        assert all(text[s:e] == t for s, e, t in zip(rows["start"], rows["end"], rows["text"]))
        assert [normalize(t) for t in rows.sort_values("sentence_index")["text"]] == article_sentences(
            clean_article(text).paragraphs)  # the same sentences as build-data, in order
    assert set(sentences["label"]) <= set(LABELS)
    assert ((sentences[[f"p_{k}" for k in LABELS]].sum(axis=1) - 1).abs() < 1e-6).all()
    assert all(len(cues) >= 1 for cues in sentences["rule_cues"])
    counts = articles.set_index("article_id")
    assert (counts[[f"n_{k}" for k in LABELS]].sum(axis=1) == counts["n_sentences"]).all()


def test_table_input_passes_metadata_and_refuses_duplicate_ids(trained_sklearn, tmp_path):
    rows = [{"id": "a", "text": "Officials said the road was closed.\n\nIt rained.", "publisher": "X", "date": "2024-01"},
            {"id": "b", "text": "Shares rose.", "publisher": "Y", "date": "2024-02"}]
    table = tmp_path / "articles.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tag(trained_sklearn[1].model_dir, table, tmp_path / "out", id_column="id", progress=False)
    articles = read_tables(tmp_path / "out", "articles").set_index("article_id")
    assert articles.loc["a", "publisher"] == "X" and articles.loc["b", "date"] == "2024-02"
    assert articles.loc["a", "n_sentences"] == 2
    table.write_text("".join(json.dumps({**r, "id": "a"}) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"expected unique article ids, found 'a' at .*articles\.jsonl:1 and at"):
        tag(trained_sklearn[1].model_dir, table, tmp_path / "dup", id_column="id", progress=False)


def test_bad_inputs_are_counted_not_fatal(trained_sklearn, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("Officials said the road was closed.")
    (folder / "empty.txt").write_text("   \n")
    (folder / "latin1.txt").write_bytes("Le maire a dit: caf\xe9.".encode("latin-1"))
    os.symlink(folder / "gone.txt", folder / "dangling.txt")
    result = tag(trained_sklearn[1].model_dir, folder, tmp_path / "out", on_bad_encoding="error", progress=False)
    skipped = read_tables(tmp_path / "out", "skipped")
    assert sorted(r.split(":")[0] for r in skipped["reason"]) == ["dangling_link", "empty_article", "undecodable"]
    assert result.articles == 1 and result.skipped == 3


def test_another_models_output_is_refused(trained_sklearn, trained_tiny, tmp_path):
    folder = _articles(tmp_path)
    tag(trained_sklearn[1].model_dir, folder, tmp_path / "out", progress=False)
    with pytest.raises(ConfigError, match="expected output of model 'tiny', found .* written by 'tfidf'"):
        tag(trained_tiny[1].model_dir, folder, tmp_path / "out", progress=False)
    tag(trained_tiny[1].model_dir, folder, tmp_path / "out", overwrite=True, progress=False)
    assert set(read_tables(tmp_path / "out")["model"]) == {"tiny"}


def test_a_killed_run_resumes_to_the_uninterrupted_output(trained_sklearn, tmp_path):
    folder = _articles(tmp_path)
    model = str(trained_sklearn[1].model_dir)
    whole = tmp_path / "whole"
    tag(model, folder, whole, part_sentences=40, progress=False)
    cut = tmp_path / "cut"
    # killed right after the third Parquet file is written: part 0 whole, part 1's sentences only
    done = subprocess.run([sys.executable, str(KILL_AT), "trainer.workflows.tagging:_write_table", "3", "SIGKILL", "tag",
                           "--model", model, "--input", str(folder), "--output", str(cut), "--part-sentences", "40"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL
    assert [p["name"] for p in json.loads((cut / "manifest.json").read_text())["parts"]] == ["part-00000.parquet"]
    assert (cut / "sentences" / "part-00001.parquet").exists()  # written, but not yet listed
    resumed = tag(model, folder, cut, part_sentences=40, progress=False)
    assert 0 < resumed.reused < len(list(folder.iterdir()))  # part 0's articles are not tagged again
    for table in ("sentences", "articles"):
        a = read_tables(whole, table).sort_values(["article_id"] + (["sentence_index"] if table == "sentences" else []))
        b = read_tables(cut, table).sort_values(["article_id"] + (["sentence_index"] if table == "sentences" else []))
        assert a.drop(columns=["rule_cues"], errors="ignore").reset_index(drop=True).equals(
            b.drop(columns=["rule_cues"], errors="ignore").reset_index(drop=True))
    again = tag(model, folder, cut, part_sentences=40, progress=False)
    assert again.articles == 0 and again.reused == len(list(folder.iterdir()))  # nothing left to do


def test_summarize_gives_shares_per_group_with_intervals(trained_sklearn, tmp_path):
    from trainer.workflows.summary import SUMMARY_FILES, summarize

    rows = [{"id": f"a{i}", "text": "Officials said the road was closed. The road was closed.", "publisher": "P"}
            for i in range(6)] + [{"id": f"b{i}", "text": "The bridge was built in 1931. It rained.", "publisher": "Q",
                                   "date": "2024-02-03"} for i in range(4)]
    table = tmp_path / "articles.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tag(trained_sklearn[1].model_dir, table, tmp_path / "out", id_column="id", progress=False)
    summary = summarize(tmp_path / "out", "publisher", n_resamples=100)
    assert summary.primary == "cc" and any("assumes the model makes no errors" in note for note in summary.notes)
    by_group = {(r["group"], r["label"]): r for r in summary.rows}
    assert {group for group, _ in by_group} == {"P", "Q", "(all)"}
    assert by_group["P", "verified"]["articles"] == 6 and by_group["Q", "verified"]["sentences"] == 8
    for group in ("P", "Q", "(all)"):
        assert sum(by_group[group, label]["cc_share"] for label in LABELS) == pytest.approx(1.0)
    assert all(r["cc_low"] <= r["cc_share"] <= r["cc_high"] for r in summary.rows)
    sentences = read_tables(tmp_path / "out")
    p_rows = sentences[sentences["article_id"].str.startswith("a")]
    assert by_group["P", "verified"]["cc_share"] == pytest.approx((p_rows["label"] == "verified").mean())
    assert all((tmp_path / "out" / "summary-publisher" / name).is_file() for name in SUMMARY_FILES)
    with pytest.raises(ConfigError, match="--by: expected a column of the articles table, found 'outlet'"):
        summarize(tmp_path / "out", "outlet")
    # no audit: QuaPy's quantifier, fitted on the tagging model's probabilities over labeled sentences
    project, trained = trained_sklearn
    with pytest.raises(ConfigError, match="expected labels that tfidf never trained on, found labels.jsonl"):
        summarize(tmp_path / "out", "publisher", report=tmp_path / "own", model=str(trained.model_dir),
                  labeled=project.write("data/fixture.yaml", project.data_config()), n_resamples=20)
    held = tmp_path / "held-out.jsonl"  # labels the model never trained on
    held.write_text("".join(json.dumps({"text": text, "label": label}) + "\n" for text, label in [
        ("The bridge was built in 1931.", "verified"), ("It rained all week.", "verified"),
        ("Shares rose three percent.", "verified"), ("The mill closed in 1987.", "verified"),
        ("Officials said the road was closed.", "attributed"), ("The mayor said the budget was cut.", "attributed"),
        ("Police said two men were arrested.", "attributed"), ("She said the talks had failed.", "attributed"),
        ("Rebels reportedly seized the town.", "unverified"), ("The claim could not be verified.", "unverified"),
        ("Troops were allegedly moved north.", "unverified")]))
    labeled = project.write("data/held-out.yaml", {"name": "held-out", "sources": [{"kind": "labeled", "path": str(held)}]})
    quantified = summarize(tmp_path / "out", "publisher", report=tmp_path / "pacc", model=str(trained.model_dir),
                           labeled=labeled, quantifier="pacc", n_resamples=20)
    assert quantified.primary == "pacc" and any("prior probability shift" in note for note in quantified.notes)
    assert all(r["pacc_low"] <= r["pacc_share"] <= r["pacc_high"] for r in quantified.rows)
    with pytest.raises(ConfigError, match="--model: expected the model that tagged this output"):
        summarize(tmp_path / "out", "publisher", report=tmp_path / "other", model=str(tmp_path / "elsewhere"))


@pytest.mark.parametrize("format", ["csv", "xlsx"])
def test_tag_writes_whole_tables_in_the_format_asked(trained_sklearn, tmp_path, format):
    import pandas as pd

    from trainer.cli import main

    rows = [{"id": "a", "text": "Officials said the road was closed.\n\nIt rained.", "publisher": "X"},
            {"id": "b", "text": "Shares rose.", "publisher": "Y"}]
    table = tmp_path / "articles.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["tag", "--model", str(trained_sklearn[1].model_dir), "--input", str(table), "--output", str(out),
                 "--id-column", "id", "--format", format]) == 0
    parts = read_tables(out)
    if format == "csv":
        sentences, articles = pd.read_csv(out / "sentences.csv"), pd.read_csv(out / "articles.csv")
        assert (out / "skipped.csv").is_file()
    else:
        sheets = pd.read_excel(out / "tagged.xlsx", sheet_name=None)
        assert list(sheets) == ["sentences", "articles", "skipped"]
        sentences, articles = sheets["sentences"], sheets["articles"]
    assert list(sentences["text"]) == list(parts["text"]) and list(sentences["label"]) == list(parts["label"])
    said = sentences.set_index("text").loc["Officials said the road was closed.", "rule_cues"]
    assert "said" in said and not said.startswith("[")  # the cues as "; "-joined text, not a Python list
    assert set(articles["publisher"]) == {"X", "Y"}
    assert sentences["truncated"].dtype == bool


def test_tag_records_each_articles_language_and_counts_the_foreign_ones(trained_sklearn, tmp_path, capsys):
    from trainer.cli import main

    rows = [{"id": "en", "text": "Officials said the road was closed.\n\nIt rained all day in the city."},
            {"id": "de", "text": "Der Minister sagte, die Gespräche seien gescheitert.\n\nDie Straße bleibt gesperrt."}]
    table = tmp_path / "articles.jsonl"
    table.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = tag(trained_sklearn[1].model_dir, table, tmp_path / "out", id_column="id", progress=False)
    assert result.non_english == {"de": 1}
    articles = read_tables(tmp_path / "out", "articles").set_index("article_id")
    assert articles.loc["de", "language"] == "de" and articles.loc["de", "language_confidence"] > 0.5
    assert articles.loc["en", "language"] == "en"
    assert main(["tag", "--model", str(trained_sklearn[1].model_dir), "--input", str(table), "--output",
                 str(tmp_path / "again"), "--id-column", "id"]) == 0
    assert "not English: 1 articles (de 1)" in capsys.readouterr().err


def test_the_quantifier_defaults_to_the_dev_set_for_a_model_trained_on_the_real_news_labels(tmp_path, monkeypatch):
    from trainer.workflows.summary import DEFAULT_LABELED, HELD_OUT_LABELED, default_labeled

    root = Path(__file__).resolve().parents[1]
    if not (root.parent / "shared" / "corpora" / "polnear").is_dir():
        pytest.skip("needs ../shared (the real-news labels' articles)")
    monkeypatch.chdir(root)
    for name, labels, expected in (("student", "data/real-news/polnear-labels.json", HELD_OUT_LABELED),
                                   ("bundled", "data/corpus/labels.jsonl", DEFAULT_LABELED)):
        folder = tmp_path / "models" / name
        folder.mkdir(parents=True)
        (folder / "training_config.json").write_text(json.dumps(
            {"data": {"sources": [{"kind": "labelstudio", "path": str(root / labels)}]}}))
        assert default_labeled(str(folder)) == expected
