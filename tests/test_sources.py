"""Every source reader on small fixtures written for the tests, and combined sources in one build."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import FIXTURES
from trainer.config import BratSource, DataConfig, FolderSource, HuggingFaceSource, LabeledSource
from trainer.data.build import build_dataset
from trainer.data.sources import html_to_text, read_brat, read_folder, read_huggingface, read_labeled
from trainer.errors import DataError

MAPPING = {"FACT": "verified", "SRC": "attributed", "UNV": "unverified"}


def _by_text(result):
    return {e.text: e for e in result.examples}


def test_folder_reads_txt_html_jsonl_csv_and_reports_cleaning():
    result = read_folder(FolderSource(path=FIXTURES / "raw", text_column="body", id_column="id"), progress=False)
    texts = _by_text(result)
    assert "PORT ELLIS (Wire) — A fire destroyed a grain warehouse on the harbor front early on Sunday." in texts
    assert "Board chair Omar Nasser said students would sleep longer." in texts  # from the HTML page
    assert "Engineers said the repairs cost $2 million." in texts  # from JSONL
    assert "Vendors say sales are up." in texts  # from CSV
    assert not any("Home" in t or "Copyright" in t or "var x" in t for t in texts)  # HTML furniture dropped
    assert result.removed == {"link_teaser": 1, "photo_credit": 1, "navigation": 1}
    assert {e.article for e in result.examples} >= {"harbor-fire", "school-board", "brief-1", "brief-3"}
    assert all(e.label is None and e.label_source == "rule" for e in result.examples)


def test_folder_missing_text_column_is_clear():
    with pytest.raises(DataError, match=r"briefs\.jsonl:1: expected a 'text' column, found \['body', 'id'\]"):
        read_folder(FolderSource(path=FIXTURES / "raw"), progress=False)


def test_html_to_text_keeps_story_blocks():
    text = html_to_text((FIXTURES / "raw/school-board.html").read_text())
    assert text.splitlines()[0] == "School board backs later start"
    assert "Marlow school board voted 5-2" in text and "Copyright" not in text


def test_brat_labels_from_claim_cues_only_first_annotator():
    result = read_brat(BratSource(path=FIXTURES / "brat"), progress=False)
    labels = {e.text: e.label for e in result.examples}
    assert labels["Mayor Ana Ruiz said the line would cost $90 million."] == "attributed"
    assert labels["Ruiz wants the work to start in spring."] == "verified"  # a desire is not a claim
    assert labels["Critics believe the cost will double."] == "attributed"  # beliefs count by default
    assert labels["The tram would reportedly carry 20,000 riders a day."] == "unverified"  # rules on top
    assert labels["The city council met on Tuesday to discuss a tram line."] == "verified"
    assert "ABSTRACT." not in labels and result.removed["discard_annotation"] == 1
    sources = {e.text: e.label_source for e in result.examples}
    assert sources["The tram would reportedly carry 20,000 riders a day."] == "annotation+rule"


def test_brat_beliefs_setting_and_exclusion_list(tmp_path):
    result = read_brat(BratSource(path=FIXTURES / "brat", count_beliefs=False), progress=False)
    assert {e.text: e.label for e in result.examples}["Critics believe the cost will double."] == "verified"
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("council-tram\n")
    with pytest.raises(DataError, match="expected annotated .txt articles, found none"):
        read_brat(BratSource(path=FIXTURES / "brat", exclude_articles=exclude), progress=False)


def test_brat_parallel_equals_serial(tmp_path):
    corpus = tmp_path / "brat"
    shutil.copytree(FIXTURES / "brat", corpus)
    for n in range(3):  # more articles, so that the pool has work to share
        shutil.copy(corpus / "text/council-tram.txt", corpus / f"text/copy{n}.txt")
        shutil.copy(corpus / "attributions/council-tram_a111.ann", corpus / f"attributions/copy{n}_a111.ann")
    serial = read_brat(BratSource(path=corpus), num_proc=1, progress=False)
    parallel = read_brat(BratSource(path=corpus), num_proc=2, progress=False)
    assert serial.examples == parallel.examples and len(serial.examples) == 4 * 6  # headline + 5 sentences each


@pytest.mark.parametrize("name", ["labeled.csv", "labeled.jsonl"])
def test_labeled_file_with_label_mapping(name):
    text_column = "sentence" if name.endswith(".csv") else "text"
    label_column = "tag" if name.endswith(".csv") else "label"
    source = LabeledSource(
        path=FIXTURES / name, text_column=text_column, label_column=label_column, article_column="doc", label_map=MAPPING
    )
    result = read_labeled(source)
    assert [e.label for e in result.examples] == [
        "verified", "attributed", "unverified", "verified", "attributed", "verified"
    ]
    assert result.articles == 3 and [e.sentence_index for e in result.examples[:2]] == [0, 1]


def test_labeled_file_unmapped_label_is_clear():
    source = LabeledSource(path=FIXTURES / "labeled.csv", text_column="sentence", label_column="tag")
    with pytest.raises(DataError, match=r"labeled\.csv:2: labels \['FACT'\] are outside the scheme"):
        read_labeled(source)


def test_huggingface_local_files():
    source = HuggingFaceSource(path="json", data_files=[str(FIXTURES / "labeled.jsonl")], article_column="doc")
    result = read_huggingface(source)
    assert len(result.examples) == 6 and result.examples[2].label == "unverified"


@pytest.mark.parametrize("kind", ["labeled", "huggingface"])
def test_exclude_articles_applies_to_labeled_rows(kind, tmp_path):
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("d1\n")
    if kind == "labeled":
        source = LabeledSource(path=FIXTURES / "labeled.jsonl", article_column="doc", label_map=MAPPING,
                               exclude_articles=exclude)
        result = read_labeled(source)
    else:
        source = HuggingFaceSource(path="json", data_files=[str(FIXTURES / "labeled.jsonl")], article_column="doc",
                                   exclude_articles=exclude)
        result = read_huggingface(source)
    assert {e.article for e in result.examples} == {"d2", "d3"} and result.skipped["excluded_article"] == 1


@pytest.mark.parametrize("kind", ["labeled", "huggingface"])
def test_exclude_articles_without_article_ids_is_refused(kind, tmp_path):
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("d1\n")
    path = str(FIXTURES / "labeled.jsonl")
    with pytest.raises(ValueError, match="expected article ids for exclude_articles to match, found none"):
        if kind == "labeled":
            LabeledSource(path=path, exclude_articles=exclude)
        else:
            HuggingFaceSource(path="json", data_files=[path], exclude_articles=exclude)


def test_combined_sources_in_one_build(project):
    config = DataConfig.model_validate(
        {
            **project.data_config(),
            "sources": [
                *project.data_config()["sources"],
                {"kind": "folder", "path": str(FIXTURES / "raw"), "text_column": "body", "id_column": "id"},
                {
                    "kind": "labeled",
                    "path": str(FIXTURES / "labeled.csv"),
                    "text_column": "sentence",
                    "label_column": "tag",
                    "article_column": "doc",
                    "label_map": MAPPING,
                },
            ],
        }
    )
    built = build_dataset(config, progress=False)
    origins = {row["label_source"] for split in built.dataset.values() for row in split}
    assert origins == {"gold", "rule"}
    card = built.card
    assert card["label_sources"]["rule"] > 0
    rows = [row for split in built.dataset.values() for row in split]
    rule_rows = [r for r in rows if r["label_source"] == "rule"]
    names = built.dataset["train"].features["label"].names
    assert all(names[r["label"]] == r["rule_label"] for r in rule_rows)  # rule-labeled examples take the rule
    assert all(r["rules_fired"].startswith("[") for r in rows)


def test_brat_only_articles_reads_just_those(tmp_path):
    from tests.conftest import FIXTURES
    from trainer.config import BratSource
    from trainer.data.sources import read_brat

    corpus = FIXTURES / "brat"
    if not corpus.is_dir():
        pytest.skip("no brat fixture")
    everything = read_brat(BratSource(path=corpus), progress=False)
    first = sorted({e.article for e in everything.examples})[0]
    listed = tmp_path / "only.txt"
    listed.write_text(f"# one article\n{first}\n")
    only = read_brat(BratSource(path=corpus, only_articles=listed), progress=False)
    assert {e.article for e in only.examples} == {first}
    assert [e.text for e in only.examples] == [e.text for e in everything.examples if e.article == first]
