"""The predict helper: one API for both backends, round trips, article tagging, the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import SEED_ARTICLE
from trainer import load_classifier
from trainer.cli import main
from trainer.errors import ModelLoadError
from trainer.labels import LABELS

SENTENCES = [
    "The mayor said the bridge would reopen in May.",
    "The bridge was built in 1931.",
    "The video could not be independently verified.",
    "Ok.",
]


@pytest.fixture(params=["trained_tiny", "trained_sklearn"])
def trained(request):
    return request.getfixturevalue(request.param)[1]


def test_predictions_in_label_order_and_sum_to_one(trained):
    predictions = load_classifier(trained.model_dir).predict(SENTENCES)
    assert [p.text for p in predictions] == SENTENCES
    for p in predictions:
        assert list(p.probabilities) == list(LABELS)
        assert p.label == max(p.probabilities, key=p.probabilities.get)
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_round_trip_after_copy_equal(trained, tmp_path):
    # Loading needs the folder and nothing else: copy it away and compare
    copy = tmp_path / "moved"
    shutil.copytree(trained.model_dir, copy)
    before = load_classifier(trained.model_dir).backend.predict_proba(SENTENCES)
    after = load_classifier(copy).backend.predict_proba(SENTENCES)
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_batching_does_not_change_results_and_keeps_order(trained):
    texts = [f"Officials said {n} people were hurt in the blast." if n % 3 else f"Item {n} is here." for n in range(50)]
    classifier = load_classifier(trained.model_dir)
    one_batch = classifier.backend.predict_proba(texts, batch_size=64)
    small_batches = classifier.backend.predict_proba(texts, batch_size=7)
    np.testing.assert_allclose(one_batch, small_batches, atol=1e-5)
    streamed = list(classifier.iter_predict(iter(texts), batch_size=7, chunk_size=16))
    assert [p.text for p in streamed] == texts


def test_load_from_mlflow_run_uri(trained_tiny):
    import mlflow

    project, result = trained_tiny
    mlflow.set_tracking_uri(project.tracking_uri)
    from_uri = load_classifier(result.model_uri).predict(SENTENCES)
    from_folder = load_classifier(result.model_dir).predict(SENTENCES)
    assert [p.label for p in from_uri] == [p.label for p in from_folder]


@pytest.mark.skipif(not SEED_ARTICLE.is_file(), reason="shared seed article not present")
def test_tag_article_on_seed_article(trained_sklearn):
    tagged = load_classifier(trained_sklearn[1].model_dir).tag_article(SEED_ARTICLE.read_text(encoding="utf-8"))
    texts = [p.text for p in tagged]
    assert texts[0] == "Russia Is Struggling to Replenish Its Troops in Ukraine"
    assert not any(t.startswith(("Learn More", "AP Photo", "(AP Photo", "Back to top")) for t in texts)
    assert any("$2,150 and $5,500" in t for t in texts)
    assert len(texts) > 40 and all(p.label in LABELS for p in tagged)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="expected a model folder with trainer_model.json"):
        load_classifier(tmp_path)
    with pytest.raises(ModelLoadError, match="found nothing there"):
        load_classifier(tmp_path / "missing")


def test_predict_cli_jsonl_and_table(trained_sklearn, capsys, tmp_path):
    model = str(trained_sklearn[1].model_dir)
    assert main(["predict", "--model", model, "--text", SENTENCES[0], "--text", SENTENCES[1], "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == SENTENCES[:2] and all(r["label"] in LABELS for r in rows)
    assert all(isinstance(r["probabilities"], dict) and list(r["probabilities"]) == list(LABELS) for r in rows)
    assert all(isinstance(r["rule_cues"], list) for r in rows) and any("said" in c for c in rows[0]["rule_cues"])
    article = tmp_path / "a.txt"
    article.write_text("Storm hits coast\n\nThe storm hit at dawn. Officials said two people died.\n\nBack to top button\n")
    assert main(["predict", "--model", model, "--file", str(article)]) == 0
    out = capsys.readouterr().out
    assert "Officials said two people died." in out and "Back to top" not in out
    said = next(line for line in out.splitlines() if "Officials said" in line)
    assert said.endswith("]") and "said" in said.rsplit("[", 1)[1]  # its rule cues beside it
    assert main(["predict", "--model", model, "--file", str(tmp_path / "none.txt")]) == 2


def test_predict_warns_on_inputs_that_are_not_english(trained_sklearn, capsys):
    model = str(trained_sklearn[1].model_dir)
    texts = ["Der Minister sagte, die Gespräche seien gescheitert.",
             "Según fuentes no confirmadas, el ministro dimitió anoche.", SENTENCES[0]]
    assert main(["predict", "--model", model, *sum((["--text", t] for t in texts), []), "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["language"] for r in rows] == ["de", "es", "en"]
    assert "2 of 3 inputs are not English (de 1, es 1)" in captured.err  # labeled, but never in silence
    assert main(["predict", "--model", model, "--text", SENTENCES[0], "--text", "Ok."]) == 0
    assert "not English" not in capsys.readouterr().err  # a short sentence is not flagged on a guess


def test_load_classifier_in_a_library_shows_no_loading_bar(trained_tiny, capsys):
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()  # as in a notebook, where nothing has switched them off
    capsys.readouterr()
    clf = load_classifier(trained_tiny[1].model_dir)
    assert clf.predict(SENTENCES[:1])[0].label in LABELS
    assert "Loading weights" not in capsys.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # the caller's own setting is given back
