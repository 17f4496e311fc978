"""The annotation loop: `select` writes Label Studio tasks, a Label Studio export builds a dataset with
its annotators' agreement, and a real Label Studio server takes the whole round trip."""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.conftest import CORPUS, FIXTURES, free_port
from tests.label_studio import ADMIN, LABEL_STUDIO, Server, User
from trainer.config import LabelStudioSource, load_data_config
from trainer.data.build import build_dataset
from trainer.data.labelstudio import agreement, cohen_kappa, read_labelstudio
from trainer.data.sentences import normalize
from trainer.errors import ConfigError, DataError
from trainer.labels import LABELS
from trainer.workflows.selection import SelectSettings, select

EXPORT = FIXTURES / "labelstudio-export.json"  # exported by Label Studio 1.23.2 from tasks `select` wrote
ARTICLES = CORPUS / "articles"
GOLD = {(r["article"], normalize(r["sentence"])): r["label"]
        for r in map(json.loads, (CORPUS / "labels.jsonl").read_text().splitlines())}


def _source(path: Path = EXPORT, **settings) -> LabelStudioSource:
    return LabelStudioSource(path=path, articles=ARTICLES, **settings)


def test_the_fixture_keeps_to_label_studio_export_schema():
    tasks = json.loads(EXPORT.read_text())
    assert isinstance(tasks, list) and tasks
    for task in tasks:
        assert isinstance(task["id"], int) and isinstance(task["data"]["text"], str)
        for annotation in task["annotations"]:
            assert isinstance(annotation["completed_by"], int)
            assert isinstance(annotation["was_cancelled"], bool) and isinstance(annotation["ground_truth"], bool)
            (choice,) = annotation["result"]
            assert {choice["from_name"], choice["to_name"], choice["type"]} == {"label", "text", "choices"}
            assert choice["value"]["choices"][0] in LABELS


def test_adjudicated_export_gives_the_gold_labels_and_cohens_kappa():
    from sklearn.metrics import cohen_kappa_score

    result = read_labelstudio(_source(resolve="adjudicator", adjudicator="3"))
    assert [e.label for e in result.examples] == [GOLD[(e.article, e.text)] for e in result.examples]
    assert len(result.examples) == 12
    figures = result.agreement[f"labelstudio:{EXPORT}"]
    tasks = json.loads(EXPORT.read_text())
    pairs = [[next(a["result"][0]["value"]["choices"][0] for a in t["annotations"] if a["completed_by"] == who)
              for who in (1, 2)] for t in tasks]
    assert figures["method"] == "cohen" and figures["items"] == 12 and figures["annotators"] == ["1", "2"]
    assert figures["overall"] == pytest.approx(cohen_kappa_score(*zip(*pairs)))
    assert figures["resolved"] == {"unanimous": 9, "adjudicated": 2, "ground_truth": 1}


@pytest.mark.parametrize(("rule", "kept"), [("majority", 12), ("drop", 10)])
def test_resolution_rules(rule, kept):
    result = read_labelstudio(_source(resolve=rule))
    assert len(result.examples) == kept
    assert all(e.label == GOLD[(e.article, e.text)] for e in result.examples)
    figures = result.agreement[f"labelstudio:{EXPORT}"]
    assert figures["method"] == "fleiss" and figures["raters_per_item"] == 2  # three annotators in all


def test_a_dataset_card_shows_the_kappa(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"name": "ls", "output_dir": str(tmp_path / "out"), "sources": [
        {"kind": "labelstudio", "path": str(EXPORT), "articles": str(ARTICLES), "resolve": "adjudicator",
         "adjudicator": "3"}]}))
    built = build_dataset(load_data_config(path), progress=False)
    assert sum(len(s) for s in built.dataset.values()) == 12
    assert "Agreement (labelstudio:" in (built.path / "README.md").read_text()
    assert "Cohen's kappa" in (built.path / "README.md").read_text()


def test_tasks_without_text_read_it_from_their_article(tmp_path):
    tasks = json.loads(EXPORT.read_text())
    for task in tasks:
        del task["data"]["text"], task["data"]["paragraph"]  # only the article id and offsets are kept
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    keyed = read_labelstudio(_source(path))
    assert [e.text for e in keyed.examples] == [e.text for e in read_labelstudio(_source()).examples]


def _broken(tmp_path: Path, change) -> Path:
    tasks = json.loads(EXPORT.read_text())
    change(tasks)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t[0]["annotations"][0].update(result=[]), r"task 6, annotation \d+: expected one 'label' choice"),
    (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(choices=["rumour"]),
     r"expected a label in \['verified', 'attributed', 'unverified'\], found 'rumour'"),
    (lambda t: t[1]["data"]["meta"].update(start=0), r"task 7: expected its text at \[0, \d+\) of article"),
    (lambda t: t[2]["data"]["meta"].update(article="nowhere"), r"expected article 'nowhere' at .*nowhere\.txt"),
])
def test_bad_exports_are_one_line_errors(tmp_path, change, message):
    with pytest.raises(DataError, match=message):
        read_labelstudio(_source(_broken(tmp_path, change)))


def test_adjudicator_rule_needs_an_adjudicator():
    with pytest.raises(ValueError, match="expected adjudicator"):
        _source(resolve="adjudicator")


def test_kappa_by_hand():
    assert cohen_kappa([["a", "a"], ["b", "b"]]) == 1.0
    assert agreement([{"x": "verified"}, {"x": "attributed"}])["method"] is None  # nobody to agree with


# ---------------------------------------------------------------- select


def test_select_writes_tasks_config_and_rows(trained_tiny, tmp_path):
    out = tmp_path / "picked"
    settings = SelectSettings(n=10, strategies=("uncertainty", "disagreement", "rare"), max_per_article=2)
    picks = select(trained_tiny[1].model_dir, ARTICLES, 10, out, settings, with_predictions=True)
    tasks = json.loads((out / "tasks.json").read_text())
    assert len(tasks) == len(picks) == 10
    from collections import Counter

    assert max(Counter(t["data"]["meta"]["article"] for t in tasks).values()) <= 2
    for t in tasks:
        raw = (ARTICLES / f"{t['data']['meta']['article']}.txt").read_text()
        assert normalize(raw[t["data"]["meta"]["start"] : t["data"]["meta"]["end"]]) == t["data"]["text"]
        assert t["data"]["text"] in normalize(t["data"]["paragraph"])
        marked = ET.fromstring(f"<p>{t['data']['paragraph_html']}</p>").find("mark")
        assert marked is not None and marked.text == t["data"]["text"]  # the sentence highlighted in its paragraph
        (prediction,) = t["predictions"]
        assert prediction["model_version"] == "tiny" and 0 < prediction["score"] <= 1
        assert prediction["result"][0]["value"]["choices"][0] in LABELS
    config = ET.fromstring((out / "labeling-config.xml").read_text())
    assert [c.get("value") for c in config.iter("Choice")] == list(LABELS)
    assert next(config.iter("HyperText")).get("value") == "$paragraph_html"
    assert all(c.get("hint") for c in config.iter("Choice"))
    rows = list(csv.DictReader((out / "tasks.csv").open()))
    assert [r["text"] for r in rows] == [t["data"]["text"] for t in tasks]
    assert [json.loads(line)["text"] for line in (out / "tasks.jsonl").read_text().splitlines()] == [r["text"] for r in rows]


def test_select_is_fixed_by_its_seed_and_skips_labeled_sentences(trained_tiny, tmp_path, project):
    from trainer.workflows.selection import read_candidates

    model = trained_tiny[1].model_dir
    first = select(model, ARTICLES, 6, tmp_path / "a", SelectSettings(n=6, seed=5))
    again = select(model, ARTICLES, 6, tmp_path / "b", SelectSettings(n=6, seed=5))
    assert [c.text for c in first] == [c.text for c in again]
    everything = read_candidates(ARTICLES)
    known = [everything[i].text for i in (0, 7, 20)]
    labeled = tmp_path / "labeled.jsonl"
    labeled.write_text("".join(json.dumps({"text": t, "label": "verified"}) + "\n" for t in known))
    config = project.write("data/labeled.yaml", {"name": "known", "sources": [{"kind": "labeled", "path": str(labeled)}]})
    rest = len(everything) - len(known)
    picks = select(model, ARTICLES, rest, tmp_path / "c", SelectSettings(n=rest, max_per_article=100, diversity="none"),
                   skip_labeled=[config])
    assert len(picks) == rest and not {c.text for c in picks} & set(known)
    with pytest.raises(DataError, match="expected sentences left to label, found none"):
        select(model, ARTICLES, 6, tmp_path / "d", skip_labeled=[project.write("data/all.yaml", project.data_config())])


def test_select_leaves_out_the_models_guess_by_default(trained_tiny, tmp_path):
    from trainer.cli import build_parser

    select(trained_tiny[1].model_dir, ARTICLES, 4, tmp_path / "p")
    tasks = json.loads((tmp_path / "p" / "tasks.json").read_text())
    assert len(tasks) == 4 and all("predictions" not in t for t in tasks)
    rows = list(csv.DictReader((tmp_path / "p" / "tasks.csv").open()))
    assert "predicted" not in rows[0]
    args = build_parser().parse_args(["select", "--model", "m", "--input", "i", "--n", "1", "--output", "o"])
    assert not args.predictions


# ---------------------------------------------------------------- the real round trip


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    if not LABEL_STUDIO.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{LABEL_STUDIO} is missing: .ci/run installs it (make label-studio)")
        pytest.skip("Label Studio is not installed here: `make label-studio` puts it in .venv-ls/")
    server = Server(tmp_path_factory.mktemp("label-studio"), free_port())
    yield server
    server.stop()


def test_label_studio_round_trip(label_studio, trained_tiny, tmp_path):
    """select -> `labelstudio push` (a project with the labeling config, tasks imported) -> two annotators ->
    `labelstudio pull` -> dataset, all through the API of a real server that listens on the loopback only."""
    import psutil

    from trainer.workflows.annotation import LabelStudio, pull, push

    server = psutil.Process(label_studio.process.pid)
    bound = {c.laddr.ip for p in (server, *server.children(recursive=True)) for c in p.net_connections("inet")
             if c.status == psutil.CONN_LISTEN}
    assert bound == {"127.0.0.1"}
    out = tmp_path / "picked"
    select(trained_tiny[1].model_dir, ARTICLES, 16, out, SelectSettings(n=16, max_per_article=2))
    admin = User(label_studio.url, *ADMIN)
    second = User(label_studio.url, "second@example.org", "second-password-1", signup=True)
    client = LabelStudio.from_env(label_studio.url, admin.personal_token())
    pushed = push(out, "Sentence sourcing", client)
    assert pushed.tasks == 16 and pushed.url.endswith(f"/projects/{pushed.project}/data")
    project = admin.call("get", f"/api/projects/{pushed.project}")
    assert project["title"] == "Sentence sourcing" and "$paragraph_html" in project["label_config"]
    listed = admin.call("get", "/api/tasks", params={"project": pushed.project, "page_size": 1000})["tasks"]
    ids = sorted(t["id"] for t in listed)
    tasks = json.loads((out / "tasks.json").read_text())
    assert len(ids) == 16 and not any(t.get("predictions") for t in listed)  # no model guess by default
    flip = {"verified": "attributed", "attributed": "verified", "unverified": "verified"}
    for n, (task_id, task) in enumerate(zip(ids, tasks)):
        label = GOLD[(task["data"]["meta"]["article"], task["data"]["text"])]
        admin.annotate(task_id, label)
        second.annotate(task_id, flip[label] if n == 0 else label)
    export = tmp_path / "export.json"
    assert pull(pushed.project, export, client) == 32
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"name": "round-trip", "output_dir": str(tmp_path / "out"), "sources": [
        {"kind": "labelstudio", "path": str(export), "articles": str(ARTICLES), "resolve": "drop"}]}))
    built = build_dataset(load_data_config(data), progress=False)
    assert sum(len(s) for s in built.dataset.values()) == 15  # the one disagreement is dropped
    figures = built.card["agreement"][f"labelstudio:{export}"]
    assert figures["method"] == "cohen" and figures["items"] == 16
    assert figures["annotators"] == sorted([str(admin.id), str(second.id)])
    assert -1 <= figures["overall"] < 1
    with pytest.raises(ConfigError, match="expected .*LABEL_STUDIO_API_KEY to be a valid access token"):
        pull(pushed.project, tmp_path / "refused.json", LabelStudio(label_studio.url, "not-a-token"))
    assert not (tmp_path / "refused.json").exists()


def test_labelstudio_commands_say_what_is_missing(tmp_path, monkeypatch, capsys):
    from trainer import cli

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    assert cli.main(["labelstudio", "pull", "--project", "1", "--output", str(tmp_path / "e.json")]) == 2
    assert "LABEL_STUDIO_API_KEY: expected your Label Studio access token, found none" in capsys.readouterr().err
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "abc")
    assert cli.main(["labelstudio", "push", "--tasks", str(tmp_path), "--url", "http://127.0.0.1:9"]) == 2
    assert "expected a folder written by `trainer select`, found no labeling-config.xml" in capsys.readouterr().err
    (tmp_path / "labeling-config.xml").write_text("<View/>")
    (tmp_path / "tasks.json").write_text("[{}]")
    assert cli.main(["labelstudio", "push", "--tasks", str(tmp_path), "--url", "http://127.0.0.1:9"]) == 2
    assert "expected Label Studio at http://127.0.0.1:9, found nothing answering" in capsys.readouterr().err


def test_make_label_studio_binds_the_loopback_and_keeps_its_data_in_the_project():
    from tests.conftest import FIXTURES

    root = FIXTURES.parents[1]
    recipe = (root / "Makefile").read_text().split("\nlabel-studio:", 1)[1].split("\n\n", 1)[0]
    assert "--internal-host 127.0.0.1" in recipe and "0.0.0.0" not in recipe
    assert "LABEL_STUDIO_BASE_DATA_DIR=$(LS_DATA)" in recipe
    assert "LS_DATA := $(CURDIR)/.label-studio" in (root / "Makefile").read_text()
    assert "/.label-studio/" in (root / ".gitignore").read_text().splitlines()


def test_exclude_articles_applies_to_label_studio_tasks(tmp_path):
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("a2-budget\n")
    result = read_labelstudio(_source(exclude_articles=exclude))
    assert "a2-budget" not in {e.article for e in result.examples} and result.skipped["excluded_article"] == 1
    assert len(result.examples) == 12 - sum(t["data"]["meta"]["article"] == "a2-budget"
                                             for t in json.loads(EXPORT.read_text()))
