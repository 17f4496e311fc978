"""Bad input gets a clear error, interrupted work loses nothing, untrusted model folders stay harmless."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainer import load_classifier
from trainer.config import FolderSource, load_config, load_data_config
from trainer.data.build import build_dataset
from trainer.data.cleaning import clean_article
from trainer.data.sentences import split_sentences
from trainer.data.sources import read_folder
from trainer.errors import ConfigError, DataError, ModelLoadError
from trainer.labels import LABELS

# ---------------------------------------------------------------- configs


def test_label_set_must_be_the_schemes(project):
    path = project.write("data/labels.yaml", {**project.data_config(), "labels": ["fact", "source"]})
    with pytest.raises(ConfigError, match=r"labels\.yaml: labels: expected the project's label scheme .*found \['fact', 'source'\]"):
        load_data_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.epochs=0", r"--set training\.epochs: expected greater than or equal to 1, found 0"),
        ("training.learning_rate=-0.1", r"--set training\.learning_rate: expected greater than 0, found -0\.1"),
        ("data.split.test=0.7", r"--set data\.split\.test: expected less than 0\.5, found 0\.7"),
        ("training.precision=fp8", r"--set training\.precision: expected 'auto', 'bf16', 'fp16' or 'fp32', found \"fp8\""),
    ],
)
def test_out_of_range_values(project, override, message):
    path = project.experiment("range", {"backend": "sklearn"})
    with pytest.raises(ConfigError, match=message):
        load_config(path, [override])


# ---------------------------------------------------------------- data


def test_non_utf8_rejected_or_decoded_by_setting(tmp_path):
    (tmp_path / "a.txt").write_bytes("Caf\xe9 owners said prices rose.".encode("latin-1"))
    with pytest.raises(DataError, match=r"a\.txt: expected UTF-8 text.*set on_bad_encoding: replace"):
        read_folder(FolderSource(path=tmp_path), progress=False)
    result = read_folder(FolderSource(path=tmp_path, on_bad_encoding="replace"), progress=False)
    assert result.skipped["decoded_with_replacement"] == 1
    assert result.examples[0].text == "Caf\ufffd owners said prices rose."


def test_html_in_a_text_file_is_converted_and_counted(tmp_path):
    (tmp_path / "page.txt").write_text("<html><body><p>The dam held.</p><p>Engineers said it was safe.</p></body></html>")
    result = read_folder(FolderSource(path=tmp_path), progress=False)
    assert [e.text for e in result.examples] == ["The dam held.", "Engineers said it was safe."]
    assert result.skipped["html_in_text_file_converted"] == 1


def test_empty_files_punctuation_lines_and_huge_paragraphs_are_counted_not_lost(tmp_path):
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "dots.txt").write_text("Storm hits coast\n\n* * *\n\n----\n\nThe storm hit at dawn.\n")
    (tmp_path / "huge.txt").write_text(("word " * 50_000).strip() + ".")
    result = read_folder(FolderSource(path=tmp_path), progress=False)
    assert result.skipped["empty_article"] == 1
    assert result.removed["punctuation_only"] == 2
    assert any(len(e.text) > 200_000 for e in result.examples)


def test_duplicate_ids_are_an_error(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "x", "text": "One."}\n{"id": "x", "text": "Two."}\n')
    with pytest.raises(DataError, match=r"a\.jsonl:2: article id 'x' appears twice"):
        read_folder(FolderSource(path=tmp_path, id_column="id"), progress=False)


# ---------------------------------------------------------------- predict


def test_predict_edge_inputs(trained_tiny):
    clf = load_classifier(trained_tiny[1].model_dir)
    texts = ["?", "Officials said 🎉 新闻 الأخبار was fine.", "word " * 400]
    predictions = clf.predict(texts)
    assert len(predictions) == 3
    assert [p.truncated for p in predictions] == [False, False, True]
    for p in predictions:
        assert sum(p.probabilities.values()) == pytest.approx(1, abs=1e-5) and p.label in LABELS
    with pytest.raises(DataError, match=r"input 1: expected a string, found NoneType"):
        clf.predict(["fine", None])
    with pytest.raises(DataError, match=r"input 0: expected a string, found int"):
        clf.predict([3])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=400))
def test_cleaning_and_splitting_never_crash(text):
    cleaned = clean_article(text)
    for paragraph in cleaned.paragraphs:
        for sentence in split_sentences(paragraph):
            assert sentence == sentence.strip() and sentence


@pytest.fixture(scope="module")
def rules_classifier(tmp_path_factory):
    from trainer.models.rules import RulesBackend
    from trainer.predict import Classifier

    return Classifier(RulesBackend(), "rules")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=200).filter(str.strip), max_size=12))
def test_predict_property_length_and_probabilities(rules_classifier, texts):
    predictions = rules_classifier.predict(texts)
    assert [p.text for p in predictions] == texts
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-6 for p in predictions)
    tagged = rules_classifier.tag_article("\n\n".join(texts))
    assert all(p.label in LABELS for p in tagged)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=120).filter(str.strip), min_size=1, max_size=8))
def test_transformer_predict_property(trained_tiny, texts):
    predictions = load_classifier(trained_tiny[1].model_dir).predict(texts)
    assert len(predictions) == len(texts)
    assert all(abs(sum(p.probabilities.values()) - 1) < 1e-5 for p in predictions)


# ---------------------------------------------------------------- interrupted work


KILL_AT = Path(__file__).with_name("kill_at.py")


def _killed_at(target: str, calls: int, sig: signal.Signals, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `trainer ARGS`, which sends itself `sig` right after the `calls`-th call of `target` returns."""
    return subprocess.run([sys.executable, str(KILL_AT), target, str(calls), sig.name, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_build_leaves_old_output_or_none(project, sig):
    """Killed after the dataset is written to its temporary folder, before the rename: nothing half-written
    stands under the real name, and the next build cleans up and succeeds."""
    articles = project.root / "many"
    articles.mkdir()
    for n in range(40):
        (articles / f"a{n}.txt").write_text(f"Story {n}\n\n" + "The council met on Tuesday. Officials said it rained. " * 5)
    config = project.write("data/many.yaml", {"name": "many", "sources": [{"kind": "folder", "path": str(articles)}],
                                              "output_dir": str(project.root / "processed")})
    done = _killed_at("datasets:DatasetDict.save_to_disk", 1, sig, "build-data", "--config", str(config),
                      cwd=project.root)
    assert done.returncode in (-sig, 128 + sig), done.stderr[-500:]
    assert not (project.root / "processed" / "many").exists()
    leftovers = list((project.root / "processed").glob(".many.tmp-*"))
    assert leftovers == [] if sig == signal.SIGTERM else len(leftovers) == 1  # SIGTERM cleans up; SIGKILL cannot
    built = build_dataset(load_data_config(config), progress=False)
    assert sum(len(s) for s in built.dataset.values()) > 0
    # nothing but the build's lock file (kept on purpose: see trainer.locks)
    assert [p.name for p in (project.root / "processed").glob(".many.*")] in ([], [".many.lock"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_training_keeps_the_previous_model(project, tiny_model_dir, sig):
    from trainer.train import train

    first = train(load_config(project.experiment("run", {"backend": "sklearn"})))
    before = (first.model_dir / "trainer_model.json").read_text()
    slow = project.experiment(
        "run", {"backend": "transformer", "pretrained": str(tiny_model_dir), "max_length": 64},
        {"epochs": 5, "batch_size": 4, "precision": "fp32", "early_stopping_patience": 5, "checkpoint_every_steps": 3},
    )
    done = _killed_at("trainer.checkpoint:Checkpointer.save", 2, sig, "train", "--config", str(slow), "--overwrite",
                      cwd=project.root)  # killed mid-training, after its second checkpoint
    assert done.returncode in (-sig, 128 + sig), done.stderr[-500:]
    assert (first.model_dir / "trainer_model.json").read_text() == before  # old model untouched
    assert load_classifier(first.model_dir).predict(["The mayor said so."])[0].label in LABELS
    if sig == signal.SIGTERM:
        assert not list(first.model_dir.parent.glob(".run.tmp-*"))


# ---------------------------------------------------------------- untrusted model folders


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pickled_weights_are_never_loaded(trained_tiny, tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "evil"
    shutil.copytree(trained_tiny[1].model_dir, folder)
    (folder / "model.safetensors").unlink()
    (folder / "manifest.json").unlink()  # whoever plants a file drops the manifest that would name it
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom()))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="expected weights in model.safetensors"):
        load_classifier(folder)
    assert not (tmp_path / "PWNED").exists()


def test_sklearn_folder_with_untrusted_types_is_refused(trained_sklearn, tmp_path, monkeypatch):
    import shutil

    import skops.io as sio

    folder = tmp_path / "evil"
    shutil.copytree(trained_sklearn[1].model_dir, folder)
    (folder / "manifest.json").unlink()
    sio.dump({"payload": _Boom()}, folder / "pipeline.skops")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="refusing to load types"):
        load_classifier(folder)
    assert not (tmp_path / "PWNED").exists()


def test_code_in_a_model_folder_is_never_run(trained_tiny, tmp_path, monkeypatch):
    import shutil

    from trainer.config import TransformerModel

    assert TransformerModel().trust_remote_code is False
    folder = tmp_path / "evil"
    shutil.copytree(trained_tiny[1].model_dir, folder)
    (folder / "manifest.json").unlink()
    (folder / "evil.py").write_text("import pathlib\npathlib.Path('PWNED').touch()\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.Evil", "AutoConfig": "evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)
    try:
        load_classifier(folder)
    except Exception:  # noqa: BLE001 - refusing is fine too; running the code is not
        pass
    assert not (tmp_path / "PWNED").exists()


def test_streaming_prediction_memory_stays_flat(trained_sklearn):
    """Predicting 100,000 sentences from a generator holds one chunk at a time, not every result."""
    import tracemalloc

    clf = load_classifier(trained_sklearn[1].model_dir)

    def peak(n: int) -> int:
        texts = (f"Officials said {i} people were hurt." if i % 2 else f"Item {i} was sold." for i in range(n))
        tracemalloc.start()
        counted = sum(1 for _ in clf.iter_predict(texts, chunk_size=2048))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert counted == n
        return top

    small, large = peak(10_000), peak(100_000)
    assert large < 1.5 * small  # ten times the input, about the same peak


def test_resume_continues_the_same_run_to_the_same_result(project, tiny_model_dir):
    import torch
    from mlflow.tracking import MlflowClient

    from trainer.checkpoint import checkpoint_dir
    from trainer.train import train

    training = {"epochs": 4, "batch_size": 8, "learning_rate": 2e-3, "seed": 7, "precision": "fp32",
                "checkpoint_every_steps": 2, "early_stopping_patience": 10}
    model = {"backend": "transformer", "pretrained": str(tiny_model_dir), "max_length": 64}
    reference = train(load_config(project.experiment("whole", model, training)))

    config_path = project.experiment("cut", model, training)
    # killed mid-epoch 2: checkpoints at steps 2 and 4, the end of epoch 1 (step 5), then step 6
    done = _killed_at("trainer.checkpoint:Checkpointer.save", 4, signal.SIGKILL, "train", "--config",
                      str(config_path), cwd=project.root)
    assert done.returncode == -signal.SIGKILL and not (project.root / "models" / "cut").exists()
    checkpoint = checkpoint_dir(project.root / "models" / "cut")
    state = torch.load(checkpoint / "state.pt", weights_only=True)
    interrupted_run = state["meta"]["run_id"]
    assert (state["loop"]["epoch"], state["loop"]["step"]) == (2, 6)  # killed where it was meant to be

    resumed = train(load_config(config_path), resume=True)
    assert resumed.run_id == interrupted_run  # the same MLflow run goes on
    assert not checkpoint.exists()
    assert resumed.metrics["test"] == reference.metrics["test"]  # as if never interrupted
    history = MlflowClient(tracking_uri=project.tracking_uri).get_metric_history(resumed.run_id, "train_loss")
    assert sorted({m.step for m in history}) == [1, 2, 3, 4]


def test_resume_without_a_checkpoint_is_a_clear_error(project):
    from trainer.train import train

    with pytest.raises(ConfigError, match=r"--resume: expected a checkpoint of run 'none'"):
        train(load_config(project.experiment("none", {"backend": "sklearn"})), resume=True)
