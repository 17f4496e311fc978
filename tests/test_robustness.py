"""Bad input gets a clear error, interrupted work loses nothing, untrusted model folders stay harmless."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
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
        # values a lax check passes but that are wrong: booleans as numbers, infinities, unsafe folder names
        ("training.epochs=true", r"--set training\.epochs: expected a number, found true"),
        ("training.batch_size=false", r"--set training\.batch_size: expected a number, found false"),
        ("training.learning_rate=.inf", r"--set training\.learning_rate: expected a finite number, found Infinity"),
        ("training.weight_decay=.nan", r"--set training\.weight_decay: expected a finite number, found NaN"),
        ("model.C=.inf", r"--set model\.C: expected a finite number"),
        ("tracking.enabled=1", r"--set tracking\.enabled: expected true or false, found 1"),
        ('training.class_weighting="true"', r"--set training\.class_weighting: expected true or false, found \"true\""),
        ("run_name=..", r"--set run_name: expected a name of letters.*found \"\.\.\""),
        ("run_name=.", r"--set run_name: expected a name of letters.*found \"\.\""),
        ("run_name=a/b", r"--set run_name: expected a name of letters.*found \"a/b\""),
        ("run_name=.hidden", r"--set run_name: expected a name .* starts with a letter"),
        ("run_name=nul", r"--set run_name: expected a name that is not a reserved device name"),
        ("run_name=COM1.txt", r"--set run_name: expected a name that is not a reserved device name"),
        ("data.name=..", r"--set data\.name: expected a name of letters.*found \"\.\.\""),
        ("training.epochs=[1", r"--set training\.epochs: expected a YAML value, found '\[1': line 1: not valid YAML"),
        ("training.epochs={a: [1}", r"--set training\.epochs: expected a YAML value"),
        ("training..epochs=1", r"--set 'training\.\.epochs=1': expected KEY\.PATH=VALUE"),
        ("training.seed=-5", r"--set training\.seed: expected greater than or equal to 0, found -5"),
        ("training.seed=99999999999999", r"--set training\.seed: expected less than or equal to 4294967295"),
        ("data.split.seed=-1", r"--set data\.split\.seed: expected greater than or equal to 0, found -1"),
        ("data.num_proc=100000", r"--set data\.num_proc: expected less than or equal to 256, found 100000"),
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
    from trainer.workflows.predict import Classifier

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
    assert not list((project.root / "processed").glob(".many.*"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_training_keeps_the_previous_model(project, tiny_model_dir, sig):
    from trainer.workflows.train import train

    first = train(load_config(project.experiment("run", {"backend": "sklearn"})))
    before = (first.model_dir / "trainer_model.json").read_text()
    slow = project.experiment(
        "run", {"backend": "transformer", "pretrained": str(tiny_model_dir), "max_length": 64},
        {"epochs": 5, "batch_size": 4, "precision": "fp32", "early_stopping_patience": 5, "checkpoint_every_steps": 3},
    )
    done = _killed_at("trainer.models.checkpoint:Checkpointer.save", 2, sig, "train", "--config", str(slow), "--overwrite",
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

    from trainer.models.checkpoint import checkpoint_dir
    from trainer.workflows.train import train

    training = {"epochs": 4, "batch_size": 8, "learning_rate": 2e-3, "seed": 7, "precision": "fp32",
                "checkpoint_every_steps": 2, "early_stopping_patience": 10}
    model = {"backend": "transformer", "pretrained": str(tiny_model_dir), "max_length": 64}
    reference = train(load_config(project.experiment("whole", model, training)))

    config_path = project.experiment("cut", model, training)
    # killed mid-epoch 2: checkpoints at steps 2 and 4, the end of epoch 1 (step 5), then step 6
    done = _killed_at("trainer.models.checkpoint:Checkpointer.save", 4, signal.SIGKILL, "train", "--config",
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
    from trainer.workflows.train import train

    with pytest.raises(ConfigError, match=r"--resume: expected a checkpoint of run 'none'"):
        train(load_config(project.experiment("none", {"backend": "sklearn"})), resume=True)


# ================================================================ hostile input, one kind per case
#
# Each case is input a user controls: it ends in one `error:` line (exit 2 at the command line), a
# correct result, or a refusal, never a traceback or a silently wrong result.


def _one_error_line(capsys) -> str:
    """What a command printed to stderr, checked to be exactly one `error:` line and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "WARNING" not in line and " INFO " not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err[-2000:]
    return lines[0]


# ---------------------------------------------------------------- configs, --set, the command line


@pytest.mark.parametrize("where", ["output_dir", "data.output_dir", "output_dir_under_a_file"])
def test_an_output_path_that_cannot_be_a_folder_fails_when_the_config_loads(project, where):
    blocker = project.root / "README.md"
    blocker.write_text("a file, not a folder")
    path = project.experiment("outputs", {"backend": "sklearn"})
    value = str(blocker / "models") if where == "output_dir_under_a_file" else str(blocker)
    key = "data.output_dir" if where == "data.output_dir" else "output_dir"
    with pytest.raises(ConfigError, match=rf"--set {re.escape(key)}: expected a folder for outputs, found "
                                          rf"'{re.escape(str(blocker))}', which is a file"):
        load_config(path, [f"{key}={value}"])


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]" for n in range(1, levels)]
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # the bomb under a typed field, where validation would expand 9**9 values
        (lambda: f"anchors:\n{textwrap.indent(_alias_bomb(), '  ')}\nrun_name: x\ntraining:\n  epochs: *l8\n",
         r"expected at most 200,000 values once aliases are expanded"),
        (lambda: "run_name: x\ntraining:\n  epochs: " + "[" * 5000 + "]" * 5000 + "\n", r"nested at most 100 deep"),
        (lambda: "run_name: x\n" + "# padding\n" * 300_000, r"expected a config of at most 2,000,000 bytes"),
        (lambda: "run_name: [x\n", r"line 2: not valid YAML"),
        (lambda: "run_name: a\ntraining: {epochs: 2}\nrun_name: b\n", r"line 3: expected each key once in a mapping, "
                                                                      r"found 'run_name' again"),
        (lambda: "- a list\n", r"expected a mapping of keys at the top level, found list"),
    ],
    ids=["alias-bomb-in-typed-field", "deep-nesting", "oversized", "broken", "duplicate-key", "not-a-mapping"],
)
def test_yaml_is_read_within_bounds_whatever_the_key(tmp_path, content, message):
    path = tmp_path / "hostile.yaml"
    path.write_text(content(), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_an_alias_bomb_in_an_override_is_refused():
    from trainer.config import parse_overrides

    with pytest.raises(ConfigError, match=r"--set training\.epochs: expected at most 200,000 values"):
        parse_overrides(["training.epochs=" + "{" + _alias_bomb().replace("\n", ", ") + "}"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--config", "CONFIG", "--set", "training.epochs=[1"], r"error: --set training\.epochs: expected a YAML"),
        (["train", "--config", "CONFIG", "--cv", "1"], r"error: trainer train: argument --cv: expected at least 2"),
        (["train", "--config", "CONFIG", "--cv", "two"], r"error: trainer train: argument --cv: expected a whole number"),
        (["train", "--config", "CONFIG", "--bogus"], r"error: trainer: unrecognized arguments: --bogus"),
        (["evaluate", "--model", "MODEL", "--resamples", "0"], r"error: --resamples: expected a whole number of at "
                                                                r"least 10 bootstrap resamples, found 0"),
        (["evaluate", "--model", "MODEL", "--output", "BLOCKER"], r"error: --output: expected a folder for outputs, "
                                                                  r"found '.*README\.md', which is a file"),
        (["compare", "--models", "MODEL", "--markdown", "FOLDER"], r"error: --markdown: expected a file to write, "
                                                                   r"found the folder"),
        (["predict", "--model", "MODEL", "--text", "   "], r"error: input 0: expected a sentence, found only whitespace"),
        (["predict", "--model", "models:/nonexistent@x", "--text", "Hi."],
         r"error: models:/nonexistent@x: expected a logged model at this MLflow URI .*not found"),
        (["evaluate", "--model", "runs:/nonexistent/model"], r"error: runs:/nonexistent/model: expected a logged model"),
        (["evaluate", "--model", "MODEL", "--label-map", "FACT=fact"], r"error: --label-map 'FACT=fact': expected OURS "
                                                                         r"to be one of \['verified'"),
        (["sweep", "--config", "CONFIG", "--space", "x.yaml", "--trials", "100000"],
         r"error: trainer sweep: argument --trials: expected at most 10,000, found 100,000"),
        (["select", "--model", "MODEL", "--input", "FOLDER", "--n", "2", "--output", "NEW", "--seed", "-1"],
         r"error: trainer select: argument --seed: expected at least 0, found -1"),
        (["audit", "OUT", "--n", "2", "--output", "NEW", "--seed", str(2**40)],
         r"error: trainer audit: argument --seed: expected at most 4,294,967,295, found 1,099,511,627,776"),
        (["check-data", "--config", "CONFIG", "--issues-output", "FOLDER"],
         r"error: --issues-output: expected --label-issues as well, found it alone"),
        (["tag", "--model", "http://me:hunter2@127.0.0.1:9/model", "--input", "FOLDER", "--output", "NEW"],
         r"error: http:/me:\*\*\*@127\.0\.0\.1:9/model: expected a model folder"),
    ],
)
def test_command_line_mistakes_are_one_line(trained_sklearn, argv, message, capsys, monkeypatch):
    from trainer.cli import main

    project, result = trained_sklearn
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
    blocker = project.root / "README.md"
    blocker.write_text("a file")
    names = {"CONFIG": str(project.experiment("cli", {"backend": "sklearn"})), "MODEL": str(result.model_dir),
             "BLOCKER": str(blocker), "FOLDER": str(project.root), "NEW": str(project.root / "new-output")}
    try:
        code = main([names.get(a, a) for a in argv])
    except SystemExit as exited:  # argparse's own mistakes end the process from inside parse_args
        code = exited.code
    assert code == 2
    assert re.match(message, _one_error_line(capsys))


def test_compare_checks_every_model_before_writing_a_report(trained_sklearn, tmp_path, monkeypatch):
    import shutil

    from trainer.workflows.compare import compare
    from trainer.outputs.tracking import check_model_uri

    import mlflow

    project, result = trained_sklearn
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
    mlflow.set_tracking_uri(project.tracking_uri)  # an earlier test may have set another one in this process
    folder = tmp_path / "copy"
    shutil.copytree(result.model_dir, folder, ignore=shutil.ignore_patterns("evaluations"))
    with pytest.raises(ModelLoadError, match=r"nowhere: expected a model folder, found nothing there"):
        compare([str(folder), str(tmp_path / "nowhere")])
    with pytest.raises(ModelLoadError, match=r"models:/nonexistent@x: expected a logged model at this MLflow URI"):
        compare([str(folder), "models:/nonexistent@x"])
    assert not (folder / "evaluations").exists()  # nothing written into the first model's folder
    check_model_uri(result.model_uri)  # a URI that names a logged model passes


def test_an_unforeseen_error_is_one_line_and_a_log_of_its_traceback(monkeypatch, capsys, project):
    """A bug (here a command that raises what no user input should cause) is one line naming a log file."""
    from trainer import cli

    def broken(args):
        raise RuntimeError("the code took a turn nobody planned")

    monkeypatch.setitem(cli.COMMANDS, "validate", broken)
    assert cli.main(["validate", "--config", "x.yaml"]) == cli.EXIT_BUG
    line = _one_error_line(capsys)
    assert "RuntimeError: the code took a turn nobody planned; this is a bug in trainer" in line
    log_file = Path(re.search(r"the traceback is in (\S+)\)", line).group(1))
    assert "Traceback (most recent call last)" in log_file.read_text() and "command: trainer validate" in log_file.read_text()


def test_ctrl_c_is_one_line_and_exit_130(project):
    """SIGINT (Ctrl-C) in the middle of a build: exit 130, one line, and the dataset is not half-written."""
    articles = project.root / "many"
    articles.mkdir()
    for n in range(6):
        (articles / f"a{n}.txt").write_text(f"Story {n}\n\nThe council met on Tuesday. Officials said it rained.")
    config = project.write("data/many.yaml", {"name": "many", "sources": [{"kind": "folder", "path": str(articles)}],
                                              "output_dir": str(project.root / "processed")})
    done = _killed_at("datasets:DatasetDict.save_to_disk", 1, signal.SIGINT, "build-data", "--config", str(config),
                      cwd=project.root)
    assert done.returncode == 130, done.stderr[-1000:]
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("interrupted")
    assert not (project.root / "processed" / "many").exists()


def test_undecodable_bytes_on_the_command_line_do_not_crash(trained_sklearn):
    """`--text $'caf\\xe9'` from a Latin-1 terminal: Python keeps the byte as a lone surrogate; it is read
    as U+FFFD, as a file decoded with replacement would be."""
    model = str(trained_sklearn[1].model_dir).encode()
    done = subprocess.run([sys.executable, "-m", "trainer.cli", "predict", "--model", model, "--text",
                           b"Caf\xe9 owners said prices rose.", "--format", "jsonl"], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-1000:]
    row = json.loads(done.stdout.decode().splitlines()[-1])
    assert row["text"] == "Caf\ufffd owners said prices rose." and row["label"] in LABELS


# ---------------------------------------------------------------- data


@pytest.mark.parametrize(
    ("name", "content", "source", "message"),
    [
        ("a.jsonl", b'{"id": "a", "text": "One."}\n{"text": "Two."}\n', {"id_column": "id"},
         r"a\.jsonl:2: expected a 'id' column, found \['text'\]"),
        ("a.jsonl", b'{"id": null, "text": "One."}\n', {"id_column": "id"},
         r"a\.jsonl:1: expected an article id in the 'id' column, found null"),
        ("a.jsonl", b'{"text": 5}\n', {}, r"a\.jsonl:1: expected text in the 'text' column, found int"),
        ("a.csv", b"text\nOne.,extra\n", {}, r"a\.csv:2: expected 1 fields as in the header, found more"),
        ("a.csv", "text\nCaf\xe9 said so.\n".encode("latin-1"), {}, r"a\.csv: expected UTF-8 text.*on_bad_encoding"),
    ],
    ids=["missing-id", "null-id", "number-as-text", "extra-csv-field", "latin1-csv"],
)
def test_bad_rows_in_article_tables(tmp_path, name, content, source, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_folder(FolderSource(path=tmp_path, **source), progress=False)


@pytest.mark.parametrize("name", ["a.jsonl", "a.csv"])
def test_on_bad_encoding_replace_applies_to_tables(tmp_path, name):
    text = "Caf\xe9 owners said prices rose."
    content = json.dumps({"text": text}, ensure_ascii=False) + "\n" if name.endswith(".jsonl") else f"text\n{text}\n"
    (tmp_path / name).write_bytes(content.encode("latin-1"))
    result = read_folder(FolderSource(path=tmp_path, on_bad_encoding="replace"), progress=False)
    assert [e.text for e in result.examples] == ["Caf\ufffd owners said prices rose."]
    assert result.skipped["decoded_with_replacement"] == 1


def test_a_byte_order_mark_is_not_part_of_the_text_or_the_header(tmp_path):
    from trainer.config import LabeledSource
    from trainer.data.sources import read_labeled

    bom = "\ufeff".encode()
    (tmp_path / "story.txt").write_bytes(bom + b"The dam held. Engineers said it was safe.")
    result = read_folder(FolderSource(path=tmp_path), progress=False)
    assert result.examples[0].text == "The dam held."
    (tmp_path / "labels.csv").write_bytes(bom + b"text,label\nThe mayor said so.,attributed\n")
    labeled = read_labeled(LabeledSource(path=tmp_path / "labels.csv"))
    assert [(e.text, e.label) for e in labeled.examples] == [("The mayor said so.", "attributed")]


def test_links_to_nothing_are_counted_in_a_raw_folder_and_named_in_a_corpus(project):
    raw = project.root / "raw"
    raw.mkdir()
    (raw / "real.txt").write_text("The dam held.")
    (raw / "gone.txt").symlink_to(raw / "deleted.txt")
    result = read_folder(FolderSource(path=raw), progress=False)
    assert result.skipped["dangling_link"] == 1 and [e.text for e in result.examples] == ["The dam held."]
    gone = project.root / "corpus" / "articles" / "zz-gone.txt"
    gone.symlink_to(raw / "deleted.txt")  # a gold-labeled corpus article that is not there
    config = project.write("data/gone.yaml", project.data_config())
    with pytest.raises(DataError, match=rf"{re.escape(str(gone))}: expected a readable file, found a link to nothing"):
        build_dataset(load_data_config(config), progress=False)


def test_one_label_cannot_train_the_baseline_and_a_missing_label_is_warned_about(project, caplog):
    from trainer.models.sklearn import SklearnBackend
    from trainer.workflows.train import train

    with pytest.raises(DataError, match=r"expected sentences of at least two labels .* found only 'verified' in 2"):
        SklearnBackend().fit(["The dam held.", "It rained."], ["verified", "verified"])
    rows = [{"text": f"Story {n} {'said the mayor' if n % 2 else 'was fine'}.", "label":
             "attributed" if n % 2 else "verified", "article": f"a{n // 2}"} for n in range(40)]
    labeled = project.root / "two-labels.jsonl"
    labeled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = project.write("data/two.yaml", {"name": "two", "output_dir": str(project.root / "processed"),
                                           "sources": [{"kind": "labeled", "path": str(labeled), "article_column": "article"}]})
    config = project.experiment("two", {"backend": "sklearn"}, None)
    with caplog.at_level("WARNING", logger="trainer.workflows.train"):
        train(load_config(config, [f"data={data}"]))
    assert "no training sentence is labeled unverified; the model cannot learn to predict it" in caplog.text


# ---------------------------------------------------------------- predict and evaluate inputs


def test_one_string_is_one_text(trained_sklearn):
    clf = load_classifier(trained_sklearn[1].model_dir)
    predictions = clf.predict("The mayor said the bridge was closed.")
    assert [p.text for p in predictions] == ["The mayor said the bridge was closed."]
    assert [p.text for p in clf.iter_predict("Shares rose.")] == ["Shares rose."]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (None, r"expected a list of strings \(or one string\) to label, found NoneType"),
        (5, r"expected a list of strings \(or one string\) to label, found int"),
        (b"bytes", r"expected a list of strings \(or one string\) to label, found bytes"),
        ({"text": "x"}, r"expected a list of strings \(or one string\) to label, found dict"),
        ({"a", "b"}, r"found set .* \(a set has no order to return predictions in\)"),
        (["fine", ""], r"input 1: expected a sentence, found an empty string"),
        (["   \n"], r"input 0: expected a sentence, found only whitespace"),
        ("", r"input 0: expected a sentence, found an empty string"),
        ([["nested"]], r"input 0: expected a string, found list"),
        (["Caf\udce9 said so."], r"input 0: expected text, found the lone surrogate '\\udce9' at 3"),
    ],
)
@pytest.mark.parametrize("call", ["predict", "iter_predict"])
def test_inputs_that_have_no_label(trained_sklearn, texts, message, call):
    clf = load_classifier(trained_sklearn[1].model_dir)
    with pytest.raises(DataError, match=message):
        list(getattr(clf, call)(texts))


# ---------------------------------------------------------------- untrusted or corrupt model folders


def _truncate(path: Path, keep: int = 1000) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _unknown_auto_map(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="evilbert", auto_map={"AutoModelForSequenceClassification": "evil.Evil"})
    (folder / "config.json").write_text(json.dumps(config))


_DAMAGE = {
    "tokenizer-deleted": ("tiny", lambda f: [(f / n).unlink() for n in ("tokenizer.json", "tokenizer_config.json")]),
    "weights-truncated": ("tiny", lambda f: _truncate(f / "model.safetensors")),
    "meta-not-json": ("tiny", lambda f: (f / "trainer_model.json").write_text("{not json")),
    "meta-not-object": ("tiny", lambda f: (f / "trainer_model.json").write_text("[1]")),
    "config-not-json": ("tiny", lambda f: (f / "config.json").write_text("{not json")),
    "auto-map-unknown-type": ("tiny", _unknown_auto_map),
    "max-length-text": ("tiny", lambda f: (f / "trainer_model.json").write_text(json.dumps(
        {**json.loads((f / "trainer_model.json").read_text()), "max_length": "long"}))),
    "temperature-negative": ("tiny", lambda f: (f / "temperature.json").write_text('{"temperature": -1}')),
    "temperature-zero": ("tiny", lambda f: (f / "temperature.json").write_text('{"temperature": 0}')),
    "temperature-text": ("tiny", lambda f: (f / "temperature.json").write_text('{"temperature": "hot"}')),
    "skops-not-zip": ("sklearn", lambda f: (f / "pipeline.skops").write_text("not a zip")),
    "skops-truncated": ("sklearn", lambda f: _truncate(f / "pipeline.skops")),
}


@pytest.fixture()
def damaged(request, trained_tiny, trained_sklearn, tmp_path):
    """A copy of a trained folder, damaged; `with_manifest`: as saved, else as an older folder without one."""
    import shutil

    name, with_manifest = request.param
    kind, damage = _DAMAGE[name]
    folder = tmp_path / name
    shutil.copytree((trained_tiny if kind == "tiny" else trained_sklearn)[1].model_dir, folder)
    if not with_manifest:
        (folder / "manifest.json").unlink()
    damage(folder)
    return folder, with_manifest


@pytest.mark.parametrize("damaged", [(name, False) for name in _DAMAGE], indirect=True, ids=list(_DAMAGE))
def test_a_damaged_folder_without_a_manifest_is_one_line(damaged):
    folder, _ = damaged
    with pytest.raises(ModelLoadError, match=rf"^{re.escape(str(folder))}.*: expected ") as refused:
        load_classifier(folder)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("damaged", "message"),
    [
        (("tokenizer-deleted", True), r"tokenizer\.json: expected this file of the model \(listed in manifest\.json\), "
                                      r"found it missing"),
        (("weights-truncated", True), r"model\.safetensors: expected [\d,]+ bytes, found 1,000 \(truncated"),
        (("meta-not-json", True), r"trainer_model\.json: expected [\d,]+ bytes, found 9 \(truncated, or changed"),
        (("auto-map-unknown-type", True), r"config\.json: expected the file saved with the model, found it changed|"
                                          r"config\.json: expected [\d,]+ bytes"),
        (("temperature-negative", True), r"temperature\.json: expected"),
        (("skops-not-zip", True), r"pipeline\.skops: expected [\d,]+ bytes, found 9"),
    ],
    indirect=["damaged"],
)
def test_the_manifest_names_the_damaged_file(damaged, message):
    folder, _ = damaged
    with pytest.raises(ModelLoadError, match=message):
        load_classifier(folder)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("training_config.json", "[1]", r"training_config\.json: expected a JSON object, found list"),
        ("training_config.json", '{"run_name": ".."}', r"training_config\.json: expected the config the model was "
                                                        r"trained with, found one that does not validate"),
        ("run.json", "[1]", r"run\.json: expected a JSON object, found list"),
        ("metrics.json", "{", r"metrics\.json: expected JSON, found a file that is not"),
    ],
)
def test_evaluate_refuses_damaged_files_beside_the_weights(trained_sklearn, tmp_path, name, content, message):
    import shutil

    from trainer.config import TrackingConfig
    from trainer.workflows.evaluate import evaluate

    # in the project it was trained in, whose files its config names (relative to the project)
    folder = trained_sklearn[0].root / "models" / f"old-{tmp_path.name}"
    shutil.copytree(trained_sklearn[1].model_dir, folder)
    (folder / "manifest.json").unlink()  # an older folder: nothing checks these files before they are read
    (folder / name).write_text(content)
    with pytest.raises(ModelLoadError, match=message):
        evaluate(folder, split="test", output=tmp_path / "report", tracking=TrackingConfig(enabled=False),
                 n_resamples=20)


def test_the_manifest_ignores_the_card_and_reports_and_is_itself_checked(trained_sklearn, tmp_path, caplog):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(trained_sklearn[1].model_dir, folder)
    (folder / "README.md").write_text("my own notes")
    (folder / "evaluations" / "mine").mkdir(parents=True)
    assert load_classifier(folder).predict(["The mayor said so."])[0].label in LABELS
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "pipeline.skops" in manifest["files"] and "README.md" not in manifest["files"]
    (folder / "manifest.json").write_text(json.dumps({"files": {"../outside.txt": {"bytes": 1, "sha256": "0"}}}))
    with pytest.raises(ModelLoadError, match=r"expected files inside the folder, found '\.\./outside\.txt'"):
        load_classifier(folder)
    (folder / "manifest.json").unlink()  # a folder saved before manifests: loads, with a warning
    with caplog.at_level("WARNING", logger="trainer.outputs.model_folder"):
        assert load_classifier(folder).predict(["The mayor said so."])[0].label in LABELS
    assert "no manifest.json (saved by an older trainer)" in caplog.text


def test_a_catastrophic_regex_in_a_rules_file_is_an_error_not_a_hang(tmp_path):
    from trainer.data.rules import DEFAULT_RULES
    from trainer.models.rules import RulesBackend
    from trainer.workflows.predict import Classifier

    import yaml

    rules = yaml.safe_load(DEFAULT_RULES.read_text())
    rules["unverified"]["hedges"].append("(a|aa)+c")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    clf = Classifier(RulesBackend(path=path), "rules")
    assert clf.predict(["Rebels reportedly seized the town."])[0].label == "unverified"
    with pytest.raises(ConfigError, match=r"unverified\.hedges: expected a regular expression that matches in "
                                          r"under 1 s, found .*\(a\|aa\)\+c.*simplify it"):
        clf.predict(["a" * 40 + "b"])


# ---------------------------------------------------------------- serving


@pytest.fixture(scope="module")
def scoring_server(trained_sklearn):
    """MLflow's own scoring server app (what `mlflow models serve` runs under uvicorn) for the logged model."""
    import mlflow
    from mlflow.pyfunc.scoring_server import init
    from starlette.testclient import TestClient

    project, result = trained_sklearn
    mlflow.set_tracking_uri(project.tracking_uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    with TestClient(init(model)) as client:
        yield client


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"inputs": [1, 2, 3]}, r"input 0: expected a string, found int"),
        ({"inputs": [None]}, r"input 0: expected a string, found NoneType"),
        ({"inputs": [["a", "b"]]}, r"input 0: expected a string, found list"),
        ({"inputs": "one sentence"}, r"expected a list of sentences, found str"),
        ({"inputs": {"sentence": ["The mayor said so."]}}, r"expected a list of sentences, found dict"),
        ({"dataframe_split": {"columns": ["sentence"], "data": [["The mayor said so."]]}}, r"must be a dictionary with "
                                                                                          r"'inputs' key"),
        ({"dataframe_records": [{"text": "The mayor said so."}]}, r"must be a dictionary with 'inputs' key"),
        ({"inputs": ["The mayor said so.", ""]}, r"input 1: expected a sentence, found an empty string"),
        ({"inputs": [" \t\n"]}, r"input 0: expected a sentence, found only whitespace"),
        ({"inputs": ["The mayor said so."] * 1001}, r"expected at most 1,000 inputs in one request, found 1,001"),
        ({"inputs": ["word " * 250_000]}, r"expected at most 1,000,000 characters in one request"),
    ],
    ids=["ints", "null", "nested", "bare-string", "mapping", "frame-split", "frame-records", "empty", "whitespace",
         "too-many", "too-long"],
)
def test_served_model_rejects_bad_payloads_with_400(scoring_server, payload, reason):
    response = scoring_server.post("/invocations", json=payload)
    assert response.status_code == 400
    body = response.json()
    assert re.search(reason, body["message"]) and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("sentence\nThe mayor said so.\n", r"expected a 'text' column, found columns \['sentence'\]"),
        ("id,title\nx1,The mayor said so.\n", r"expected a 'text' column, found columns \['id', 'title'\]"),
        ('text\n""\n', r"input 0: expected a string, found NoneType"),
    ],
    ids=["wrong-column", "no-text-column", "empty-cell"],
)
def test_served_model_rejects_frames_without_their_text(scoring_server, body, reason):
    response = scoring_server.post("/invocations", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400 and re.search(reason, response.json()["message"])


def test_served_model_reads_a_frame_by_its_text_column(scoring_server):
    """An id column first is not labeled in place of the text (MLflow alone takes the first string column)."""
    by_column = scoring_server.post("/invocations", content="id,text\nx1,The mayor said so.\n",
                                    headers={"Content-Type": "text/csv"})
    as_list = scoring_server.post("/invocations", json={"inputs": ["The mayor said so."]})
    assert by_column.status_code == 200 and by_column.json() == as_list.json()


def test_served_model_answers_good_payloads(scoring_server):
    response = scoring_server.post("/invocations", json={"inputs": ["The mayor said so.", "Shares rose."]})
    assert response.status_code == 200
    assert [p["label"] in LABELS for p in response.json()["predictions"]] == [True, True]


def test_served_model_size_limit_is_configurable(scoring_server, monkeypatch):
    monkeypatch.setenv("TRAINER_SERVE_MAX_INPUTS", "2")
    response = scoring_server.post("/invocations", json={"inputs": ["One.", "Two.", "Three."]})
    assert response.status_code == 400 and "expected at most 2 inputs in one request, found 3" in response.text
    monkeypatch.setenv("TRAINER_SERVE_MAX_INPUTS", "3")
    assert scoring_server.post("/invocations", json={"inputs": ["One.", "Two.", "Three."]}).status_code == 200


# ---------------------------------------------------------------- round three: messy corpora, exports, secrets


def _tag_args(model: Path, input: Path, output: Path, *extra: str) -> list[str]:
    return ["-q", "tag", "--model", str(model), "--input", str(input), "--output", str(output), *extra]


def _parquet_rows(output: Path, table: str):
    from trainer.workflows.tagging import read_tables

    return read_tables(output, table)


def test_one_bad_input_is_skipped_and_counted_never_the_end_of_a_run(trained_sklearn, tmp_path, capsys):
    from trainer.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("The minister said talks failed. Prices rose, analysts said.")
    (folder / "broken.jsonl").write_text("{not json\n")
    (folder / "garbage.parquet").write_bytes(b"PAR1garbage")
    (folder / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"id": None, "text": "He said so."}, {"id": "n", "text": 12345}, {"id": "d", "text": {"body": "x"}},
        {"id": "ok", "text": "She agreed.", "n_sentences": "999"}]) + "\n")
    os.mkfifo(tmp_path / "fifo")
    (folder / "fifo.txt").symlink_to(tmp_path / "fifo")
    (folder / "zero.txt").symlink_to("/dev/zero")
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("The mayor said it. It rained.")
    assert main(_tag_args(trained_sklearn[1].model_dir, folder, tmp_path / "out", "--id-column", "id")) == 0
    skipped = _parquet_rows(tmp_path / "out", "skipped")
    reasons = sorted(r.split(":")[0] for r in skipped["reason"])
    assert reasons == ["no_id", "not_a_regular_file", "not_a_regular_file", "not_text", "not_text", "unreadable",
                       "unreadable"]
    articles = _parquet_rows(tmp_path / "out", "articles").set_index("article_id")
    assert sorted(articles.index) == ["caf\\xe9", "good", "ok"]
    assert articles.loc["ok", "n_sentences"] == 1 and articles.loc["ok", "input_n_sentences"] == "999"
    # a rerun lists nothing twice
    assert main(_tag_args(trained_sklearn[1].model_dir, folder, tmp_path / "out", "--id-column", "id")) == 0
    assert len(_parquet_rows(tmp_path / "out", "skipped")) == len(skipped)
    assert len(_parquet_rows(tmp_path / "out", "articles")) == 3


def test_an_edited_article_replaces_its_rows(trained_sklearn, tmp_path):
    from trainer.workflows.tagging import tag

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("One said so. Two agreed. Three left.")
    (folder / "b.txt").write_text("The mayor said it.")
    tag(trained_sklearn[1].model_dir, folder, tmp_path / "out", progress=False)
    (folder / "a.txt").write_text("Edited: the mayor said so.")
    tag(trained_sklearn[1].model_dir, folder, tmp_path / "out", progress=False)
    sentences = _parquet_rows(tmp_path / "out", "sentences")
    assert list(sentences[sentences.article_id == "a"]["text"]) == ["Edited: the mayor said so."]
    assert sorted(_parquet_rows(tmp_path / "out", "articles")["article_id"]) == ["a", "b"]


def test_a_long_article_is_written_in_parts(trained_sklearn, tmp_path):
    from trainer.workflows.tagging import tag

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "long.txt").write_text("He said so. " * 2_500)
    result = tag(trained_sklearn[1].model_dir, folder, tmp_path / "out", part_sentences=1000, progress=False)
    assert result.sentences == 2_500
    assert len(list((tmp_path / "out" / "sentences").glob("part-*.parquet"))) == 3
    assert len(_parquet_rows(tmp_path / "out", "articles")) == 1


def test_an_article_over_the_size_limit_or_a_huge_sentence_is_no_end(trained_sklearn, tmp_path, monkeypatch):
    from trainer.workflows import tag_input
    from trainer.workflows.tagging import tag

    monkeypatch.setattr(tag_input, "MAX_ARTICLE_BYTES", 100_000)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "dump.txt").write_text("x" * 100_001)
    (folder / "one.txt").write_text("word " * 19_000)  # one 95 kB sentence: the rules read its start only
    result = tag(trained_sklearn[1].model_dir, folder, tmp_path / "out", progress=False)
    assert (result.articles, result.skipped) == (1, 1)
    assert _parquet_rows(tmp_path / "out", "skipped")["reason"][0].startswith("too_large")


def test_a_fifo_as_input_is_one_line(trained_sklearn, tmp_path):
    from trainer.workflows.tagging import tag

    os.mkfifo(tmp_path / "in.jsonl")
    with pytest.raises(DataError, match=r"in\.jsonl: expected a folder or a regular file to read, found a FIFO"):
        tag(trained_sklearn[1].model_dir, tmp_path / "in.jsonl", tmp_path / "out", progress=False)


@pytest.mark.parametrize(("content", "message"), [
    ("[1, 2]", r"expected the manifest\.json of an earlier trainer tag .*found another JSON"),
    ("{bad", r"expected the manifest\.json of an earlier trainer tag .*cannot be read"),
])
def test_a_broken_tag_manifest_is_one_line(trained_sklearn, tmp_path, content, message):
    from trainer.workflows.tagging import tag

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("He said so.")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text(content)
    with pytest.raises(ConfigError, match=message):
        tag(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "out", progress=False)


def test_summarize_never_replaces_a_folder_of_other_files(trained_sklearn, tmp_path):
    from trainer.workflows.summary import summarize
    from trainer.workflows.tagging import tag

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("He said so.")
    tag(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "out", progress=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"--report: expected a new folder or an earlier output .*keep\.txt"):
        summarize(tmp_path / "out", "path", report=mine, n_resamples=20)
    with pytest.raises(ConfigError, match=r"--report: expected a new folder or an earlier output"):
        summarize(tmp_path / "out", "path", report=tmp_path / "out", n_resamples=20)
    assert (mine / "keep.txt").read_text() == "mine" and (tmp_path / "out" / "manifest.json").is_file()


def _ls_task(**meta) -> dict:
    return {"id": 1, "data": {"text": None, "meta": {"article": "a", "start": 0, "end": 18, **meta}},
            "annotations": [{"id": 1, "completed_by": 1, "result": [
                {"from_name": "label", "type": "choices", "value": {"choices": ["attributed"]}}]}]}


@pytest.mark.parametrize(("tasks", "message"), [
    ([5], r"task at position 0: expected each task to be an object"),
    ([{"id": 1, "data": "x"}], r"task 1: expected data to be an object"),
    ([{"id": 1, "data": {"text": "x", "meta": []}}], r"expected data\.meta to be an object"),
    ([{**_ls_task(), "annotations": {"a": 1}}], r"expected annotations to be a list"),
    ([{**_ls_task(), "annotations": [{"result": {"x": 1}}]}], r"expected result to be a list"),
    ([_ls_task(start="zero")], r"expected meta\.start to be a whole number, found \"zero\""),
    ([_ls_task(start=0, end=999)], r"expected offsets with 0 <= start < end <= 29 .*found \[0, 999\)"),
    ([_ls_task(start=10, end=2)], r"found \[10, 2\)"),
    ([_ls_task(start=-5, end=-1)], r"found \[-5, -1\)"),
    ([_ls_task(article="../secret")], r"expected an article id that names a file in .*found '\.\./secret'"),
    ([_ls_task(article="/etc/hostname")], r"expected an article id that names a file in .*found '/etc/hostname'"),
    ([_ls_task(article="link")], r"expected an article id that names a file in .*found 'link'"),
    ("[" * 100_000, r"export\.json: expected Label Studio's JSON export, found JSON nested too deep to read"),
    ([{**_ls_task(), "annotations": [{"id": 1, "result": [{"from_name": "label", "type": "choices",
                                                           "value": {"choices": ["verified", "attributed"]}}]}]}],
     r"task 1, annotation 1: expected one 'label' choice in the annotation's result, found 2 \('verified', "
     r"'attributed'\); make the control single-choice"),
])
def test_label_studio_exports_of_the_wrong_shape_or_leading_out_are_one_line(tmp_path, tasks, message):
    from trainer.config import LabelStudioSource
    from trainer.data.labelstudio import read_labelstudio

    (tmp_path / "arts").mkdir()
    (tmp_path / "arts" / "a.txt").write_text("The mayor said so. It rained.")
    (tmp_path / "secret.txt").write_text("A secret sentence of another folder.")
    (tmp_path / "arts" / "link.txt").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "export.json").write_text(tasks if isinstance(tasks, str) else json.dumps(tasks))
    with pytest.raises(DataError, match=message):
        read_labelstudio(LabelStudioSource(path=tmp_path / "export.json", articles=tmp_path / "arts"), progress=False)


def test_annotations_without_an_annotator_are_not_merged_into_one(tmp_path):
    from trainer.config import LabelStudioSource
    from trainer.data.labelstudio import read_labelstudio

    choice = lambda label, i: {"id": i, "result": [{"from_name": "label", "type": "choices",  # noqa: E731
                                                    "value": {"choices": [label]}}]}
    tasks = [{"id": i, "data": {"text": f"Source {i} said so."},
              "annotations": [choice("attributed", 1), choice("verified" if i % 2 else "attributed", 2)]}
             for i in range(6)]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    result = read_labelstudio(LabelStudioSource(path=tmp_path / "export.json"), progress=False)
    (agreement,) = result.agreement.values()
    assert agreement["tasks_with_several"] == 6 and agreement["overall"] is not None


def test_three_one_sentence_articles_build(project):
    rows = [("The mayor said the road is shut.", "attributed", "a1"), ("The road is shut.", "verified", "a2"),
            ("The road may be shut, it is rumoured.", "unverified", "a3")]
    path = project.root / "three.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": label, "article": a}) + "\n" for t, label, a in rows))
    config = project.write("data/three.yaml", {"name": "three", "output_dir": "data/built", "sources": [
        {"kind": "labeled", "path": str(path), "article_column": "article"}]})
    built = build_dataset(load_data_config(config), progress=False)
    assert sum(len(built.dataset[s]) for s in built.dataset) == 3 and all(len(built.dataset[s]) for s in built.dataset)


def test_secrets_are_masked_wherever_a_uri_is_shown():
    from trainer.infra.secrets import mask_secrets

    assert mask_secrets("at https://me:hunter2@mlflow.example/") == "at https://me:***@mlflow.example/"
    assert mask_secrets("postgresql://u:p%40ss@db/x?sslpassword=y") == "postgresql://u:***@db/x?sslpassword=***"
    assert mask_secrets("sqlite:///mlflow.db") == "sqlite:///mlflow.db"


def test_crash_logs_are_private_and_hold_no_values(monkeypatch, tmp_path):
    import stat

    from trainer.infra import crash

    monkeypatch.setattr(crash.tempfile, "gettempdir", lambda: str(tmp_path))
    argv = ["train", "--set", "tracking.uri=https://u:secret@h"]
    path = crash.crash_log(RuntimeError("at https://u:secret@h/"), argv, "0")
    assert path.parent == tmp_path / f"trainer-crashes-{os.getuid()}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "command: trainer train --set\n" in text and "secret" not in text
    # a planted link in place of the folder is refused, not followed
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setattr(crash.tempfile, "gettempdir", lambda: str(other))
    (other / f"trainer-crashes-{os.getuid()}").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(PermissionError):
        crash.crash_log(RuntimeError("x"), ["train"], "0")
    assert not list((tmp_path / "elsewhere").iterdir())


def test_a_link_out_of_a_model_folder_is_refused(trained_sklearn, tmp_path):
    import shutil

    from trainer.models.export import export_model
    from trainer.outputs.model_folder import evaluation_dir

    folder = tmp_path / "model"
    shutil.copytree(trained_sklearn[1].model_dir, folder)
    shutil.rmtree(folder / "evaluations", ignore_errors=True)  # an earlier test may have evaluated the model
    (tmp_path / "victim").mkdir()
    (folder / "evaluations").symlink_to(tmp_path / "victim", target_is_directory=True)
    with pytest.raises(ModelLoadError, match=r"evaluations: expected a folder inside the model folder, found a link"):
        evaluation_dir(folder, "dev")
    (folder / "evaluations").unlink()
    (folder / "stolen.txt").symlink_to("/etc/hostname")
    with pytest.raises(ModelLoadError, match=r"stolen\.txt: expected the files of the model folder, found a link"):
        export_model(folder, tmp_path / "export")


def test_a_full_or_read_only_disk_is_one_line():
    import errno

    from trainer.infra.crash import disk_message

    assert disk_message(OSError(errno.ENOSPC, "No space left on device", "out/x")).startswith(
        "expected room to write the command's output, found the disk is full (out/x)")
    assert "read-only" in disk_message(OSError(errno.EROFS, "Read-only file system"))
    assert disk_message(OSError(errno.ENOENT, "No such file")) is None


def test_select_says_why_it_returns_fewer_than_asked(trained_sklearn, tmp_path, capsys):
    from trainer.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(" ".join(f"Official {i} said roads {i} were shut." for i in range(12)))
    assert main(["-q", "select", "--model", str(trained_sklearn[1].model_dir), "--input", str(tmp_path / "in"),
                 "--n", "20", "--output", str(tmp_path / "sel")]) == 0
    err = capsys.readouterr().err
    assert "note: 3 of the 20 asked for: at most --max-per-article 3 from each of 1 article(s)" in err


def test_max_length_past_the_encoders_positions_is_refused_before_training(project, tiny_model_dir):
    from tests.conftest import TINY_TRAINING, tiny_model_section
    from trainer.workflows.train import train

    config = project.experiment("long", {**tiny_model_section(tiny_model_dir), "max_length": 4096}, TINY_TRAINING)
    with pytest.raises(ConfigError, match=r"model\.max_length: expected at most 128 tokens, the positions of encoder "
                                          r".*found 4096"):
        train(load_config(config))
    assert not (project.root / "models" / "long").exists()


def test_a_raw_folder_skips_special_files_and_keeps_names_that_are_not_utf8(project, tmp_path):
    folder = project.root / "raw"
    folder.mkdir()
    for i in range(3):
        (folder / f"a{i}.txt").write_text(f"The minister said on day {i} that talks failed. Prices rose {i} percent.")
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("The mayor said it. It rained.")
    os.mkfifo(tmp_path / "fifo")
    (folder / "fifo.txt").symlink_to(tmp_path / "fifo")
    (folder / "zero.txt").symlink_to("/dev/zero")
    result = read_folder(FolderSource(path=folder), progress=False)
    assert result.skipped["not_a_regular_file"] == 2 and result.articles == 4
    assert "caf\\xe9" in {e.article for e in result.examples}
    config = project.write("data/raw.yaml", {"name": "raw", "output_dir": "data/built",
                                             "sources": [{"kind": "folder", "path": str(folder)}]})
    built = build_dataset(load_data_config(config), progress=False)
    assert built.card["fingerprint"]


# ------------------------------------------------ round three, second pass: tables, workbooks, paths, limits


def test_tables_keep_line_breaks_inside_cells_and_long_cells(tmp_path):
    from trainer.data.sources import read_table

    (tmp_path / "t.csv").write_text('id,text\na,"Para one said.\n\nPara two\u2028held."\nb,"' + "x" * 200_000 + '"\n')
    rows = [row for _, row in read_table(tmp_path / "t.csv")]
    assert rows[0]["text"] == "Para one said.\n\nPara two\u2028held." and len(rows[1]["text"]) == 200_000
    # json.dumps(..., ensure_ascii=False) writes U+2028 and U+0085 as they are: text, not line ends
    (tmp_path / "t.jsonl").write_text(json.dumps({"id": "a", "text": "One\u2028two\x85three."}, ensure_ascii=False)
                                      + "\n", encoding="utf-8")
    assert [row["text"] for _, row in read_table(tmp_path / "t.jsonl")] == ["One\u2028two\x85three."]


def test_a_bad_jsonl_line_is_skipped_and_the_rest_of_the_file_tagged(trained_sklearn, tmp_path):
    from trainer.cli import main

    (tmp_path / "t.jsonl").write_text("\n".join([json.dumps({"text": "The mayor said so."}), "[" * 100_000, "{broken",
                                                 json.dumps({"text": "Officials confirmed it."})]) + "\n")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "t.jsonl", tmp_path / "out")) == 0
    skipped = _parquet_rows(tmp_path / "out", "skipped")
    assert sorted(skipped["where"]) == [f"{tmp_path / 't.jsonl'}:2", f"{tmp_path / 't.jsonl'}:3"]
    assert any("nested too deep" in r for r in skipped["reason"])
    # a bad line keeps its place in the numbering: fixing it renames no other row's article
    assert sorted(_parquet_rows(tmp_path / "out", "articles")["article_id"]) == ["t-0", "t-3"]


def test_a_single_input_file_of_an_unknown_kind_is_one_line(trained_sklearn, tmp_path, capsys):
    from trainer.cli import main

    (tmp_path / "t.tsv").write_text("id\ttext\na\tThe mayor said so.\n")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "t.tsv", tmp_path / "out")) == 2
    assert re.match(r"error: .*t\.tsv: expected a folder, an article \(.txt, .md, .html, .htm\), a table .* found a "
                    r"\.tsv file; convert it", _one_error_line(capsys))
    assert not (tmp_path / "out").exists()


def test_a_table_row_over_the_article_limit_is_skipped(trained_sklearn, tmp_path, monkeypatch):
    from trainer.cli import main
    from trainer.workflows import tag_input

    monkeypatch.setattr(tag_input, "MAX_ARTICLE_BYTES", 1000)
    (tmp_path / "t.jsonl").write_text(json.dumps({"id": "big", "text": "The mayor said it. " * 100}) + "\n"
                                      + json.dumps({"id": "small", "text": "Officials confirmed it."}) + "\n")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "t.jsonl", tmp_path / "out", "--id-column",
                          "id")) == 0
    assert list(_parquet_rows(tmp_path / "out", "skipped")["reason"]) == [
        "too_large: 1,900 characters, over 1,000 for one article"]
    assert list(_parquet_rows(tmp_path / "out", "articles")["article_id"]) == ["small"]


def test_workbooks_hold_text_never_formulas_and_no_control_characters(trained_sklearn, tmp_path):
    import openpyxl

    from trainer.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text('=HYPERLINK("http://x.example","open") said the mayor.\n\n'
                                           "Officials\x00 confirmed\x07 it.\n")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "out", "--format", "xlsx")) == 0
    cells = [c for sheet in openpyxl.load_workbook(next((tmp_path / "out").glob("*.xlsx")))
             for row in sheet.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = {c.value for c in cells if isinstance(c.value, str)}
    assert '=HYPERLINK("http://x.example","open") said the mayor.' in texts
    assert "Officials\ufffd confirmed\ufffd it." in texts


def test_a_tag_output_never_reaches_outside_itself(trained_sklearn, tmp_path, capsys):
    from trainer.cli import main

    model = trained_sklearn[1].model_dir
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The mayor said so. Officials confirmed it.")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("not the tagger's")
    assert main(_tag_args(model, tmp_path / "in", tmp_path / "out")) == 0
    # a tables folder that is a link: its unlisted files would be removed as a kill's leftovers
    articles = tmp_path / "out" / "articles"
    articles.rename(tmp_path / "articles-real")
    articles.symlink_to(mine)
    assert main(_tag_args(model, tmp_path / "in", tmp_path / "out")) == 2
    assert "expected articles/ to be a folder inside" in _one_error_line(capsys)
    assert (mine / "keep.txt").exists()
    articles.unlink()
    (tmp_path / "articles-real").rename(articles)
    # a part name in the manifest is a path from the file: one that leads out is refused
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    manifest["parts"].append({"name": "../../mine/keep.txt"})
    manifest["partial"] = ["a"]
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(manifest))
    assert main(_tag_args(model, tmp_path / "in", tmp_path / "out")) == 2
    assert "expected parts named part-NNNNN.parquet" in _one_error_line(capsys)
    assert (mine / "keep.txt").read_text() == "not the tagger's"


def test_overwrite_through_a_link_to_another_models_output(trained_sklearn, tmp_path):
    from trainer.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The mayor said so. Officials confirmed it.")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "real")) == 0
    manifest = json.loads((tmp_path / "real" / "manifest.json").read_text())
    (tmp_path / "real" / "manifest.json").write_text(json.dumps({**manifest, "model": "another"}))
    (tmp_path / "out").symlink_to(tmp_path / "real")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "out", "--overwrite")) == 0
    assert (tmp_path / "out").is_symlink()
    assert json.loads((tmp_path / "real" / "manifest.json").read_text())["model"] == manifest["model"]
    assert len(_parquet_rows(tmp_path / "real", "sentences")) == 2


def test_summarize_keeps_a_column_named_like_a_path_inside_the_output(trained_sklearn, tmp_path):
    from trainer.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The mayor said so. Officials confirmed it.")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "out")) == 0
    (tmp_path / "meta.jsonl").write_text(json.dumps({"id": "a", "../../pwn": "=1+1<script>"}) + "\n")
    assert main(["summarize", str(tmp_path / "out"), "--by", "../../pwn", "--metadata", str(tmp_path / "meta.jsonl"),
                 "--key", "id"]) == 0
    assert (tmp_path / "out" / "summary-.._.._pwn" / "summary.csv").is_file()
    assert not (tmp_path / "pwn").exists() and not (tmp_path.parent / "pwn").exists()


def test_tasks_of_one_sentence_are_pooled_and_a_missing_adjudicator_is_named(tmp_path):
    from trainer.config import LabelStudioSource
    from trainer.data.labelstudio import read_labelstudio

    (tmp_path / "arts").mkdir()
    (tmp_path / "arts" / "a.txt").write_text("The mayor said so. It rained.")

    def annotation(number: int, who: int, label: str) -> dict:
        return {"id": number, "completed_by": who, "result": [
            {"from_name": "label", "type": "choices", "value": {"choices": [label]}}]}

    first = {**_ls_task(), "annotations": [annotation(1, 1, "attributed")]}
    again = {**_ls_task(), "id": 2, "annotations": [annotation(1, 1, "attributed"), annotation(2, 2, "verified")]}
    (tmp_path / "export.json").write_text(json.dumps([first, first, again]))
    source = LabelStudioSource(path=tmp_path / "export.json", articles=tmp_path / "arts", resolve="drop")
    result = read_labelstudio(source, progress=False)
    # one sentence, its two annotators disagree: dropped, never two rows of opposite labels
    assert result.examples == [] and result.skipped["task_of_a_sentence_seen_before"] == 2
    assert result.skipped["dropped_disagreement"] == 1
    adjudicated = LabelStudioSource(path=tmp_path / "export.json", articles=tmp_path / "arts", resolve="adjudicator",
                                    adjudicator="nobody@example.org")
    with pytest.raises(DataError, match=r"expected adjudicator 'nobody@example.org' among the annotators of the "
                                        r"export \(1 disagreements wait for them\), found only \['1', '2'\]"):
        read_labelstudio(adjudicated, progress=False)


def test_a_uri_that_lost_a_slash_is_still_masked():
    from trainer.infra.secrets import mask_secrets

    assert mask_secrets("http:/me:hunter2@host:9/model") == "http:/me:***@host:9/model"


def test_tag_spark_skips_a_row_without_an_id_as_tag_does():
    import pandas as pd

    from trainer.workflows.spark_tag import _split_partitions

    rows = pd.DataFrame({"article_id": [None, float("nan"), " ", "ok"], "where": ["t.jsonl"] * 4,
                         "text": ["The mayor said so."] * 4})
    out = pd.concat(list(_split_partitions(iter([rows]), [], "error", "table")))
    assert sorted(out.loc[out["kind"] == "skipped", "reason"].str.split(":").str[0]) == ["no_id"] * 3
    assert set(out.loc[out["kind"] != "skipped", "article_id"]) == {"ok"}


def test_summarize_plots_a_huge_group_name_cut_and_keeps_it_whole_in_the_tables(trained_sklearn, tmp_path):
    import pandas as pd

    from trainer.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The mayor said so. Officials confirmed it.")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "out")) == 0
    name = "outlet " * 100_000  # matplotlib laid out a tick label this long for minutes
    (tmp_path / "meta.jsonl").write_text(json.dumps({"id": "a", "pub": name}) + "\n")
    assert main(["summarize", str(tmp_path / "out"), "--by", "pub", "--metadata", str(tmp_path / "meta.jsonl"),
                 "--key", "id", "--report", str(tmp_path / "report")]) == 0
    assert set(pd.read_csv(tmp_path / "report" / "summary.csv")["group"]) == {name, "(all)"}


# ---------------------------------------------------------------- hostile cases, round three, third pass


@pytest.mark.parametrize(("name", "content", "message"), [
    ("dup.csv", b'id,text,text\na,"The mayor said so.","Police said nothing."\n',
     r"dup\.csv: expected each column name once in the header, found 'text' 2 times"),
    ("u16.csv", 'id,text\na,"The mayor said so."\n'.encode("utf-16"),
     r"u16\.csv: expected UTF-8 text, found UTF-16 \(its byte-order mark\); re-save the file as UTF-8$"),
    ("u32.jsonl", '{"id": "a", "text": "x"}\n'.encode("utf-32"), r"expected UTF-8 text, found UTF-32"),
    ("dup.parquet", None, r"dup\.parquet: expected each column name once in the header, found 'text' 2 times"),
])
def test_a_table_with_a_column_named_twice_or_in_utf16_is_one_line(tmp_path, name, content, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.data.sources import read_table

    path = tmp_path / name
    if content is None:  # a row would keep only the last 'text' cell
        pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["x"]), pa.array(["y"])],
                                            names=["id", "text", "text"]), path)
    else:
        path.write_bytes(content)
    for on_bad_encoding in ("error", "replace"):  # replacement characters would not make UTF-16 readable
        with pytest.raises(DataError, match=message):
            list(read_table(path, on_bad_encoding))


def test_summarize_refuses_metadata_that_counts_an_article_twice_or_joins_none(trained_sklearn, tmp_path, capsys):
    import pandas as pd

    from trainer.cli import main

    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"id": f"00{i}", "text": f"Official {i} said so."}) + "\n"
                                              for i in range(3)))
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "t.jsonl", tmp_path / "out", "--id-column", "id")) == 0
    summarize = ["summarize", str(tmp_path / "out"), "--by", "pub", "--key", "id", "--report", str(tmp_path / "rep")]
    (tmp_path / "twice.csv").write_text("id,pub\n000,A\n001,B\n002,B\n000,C\n")
    assert main([*summarize, "--metadata", str(tmp_path / "twice.csv")]) == 2
    assert "expected each article once in the 'id' column, found '000' 2 times" in capsys.readouterr().err
    (tmp_path / "none.csv").write_text("id,pub\n000.txt,A\n")
    assert main([*summarize, "--metadata", str(tmp_path / "none.csv")]) == 2
    assert "found none of them (its values are such as '000.txt')" in capsys.readouterr().err
    (tmp_path / "zeros.csv").write_text("id,pub\n000,A\n001,B\n002,B\n")  # read as numbers, 000 joined nothing
    assert main([*summarize, "--metadata", str(tmp_path / "zeros.csv")]) == 0
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv").query("label == 'verified'").set_index("group")
    assert summary.loc["A", "articles"] == 1 and summary.loc["B", "articles"] == 2


@pytest.mark.parametrize("damage", ["no sentences", "a broken part"])
def test_summarize_or_audit_of_a_tag_output_without_its_parts_is_one_line(trained_sklearn, tmp_path, capsys, damage):
    import shutil

    from trainer.cli import main

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The mayor said so. Officials confirmed it.")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / "out")) == 0
    if damage == "no sentences":
        shutil.rmtree(tmp_path / "out" / "sentences")
    else:
        next((tmp_path / "out" / "sentences").glob("part-*.parquet")).write_bytes(b"PAR1 not parquet")
    assert main(["summarize", str(tmp_path / "out"), "--by", "path"]) == 2
    assert main(["audit", str(tmp_path / "out"), "--n", "1", "--output", str(tmp_path / "audit")]) == 2
    err = capsys.readouterr().err
    expected = "expected the sentences/ parts trainer tag wrote" if damage == "no sentences" else "found one that cannot be read"
    assert err.count(expected) == 2 and "unexpected" not in err


def test_label_studio_tasks_of_one_sentence_meet_whatever_their_types_and_unicode_forms(tmp_path):
    import unicodedata

    from trainer.config import LabelStudioSource
    from trainer.data.labelstudio import read_labelstudio

    (tmp_path / "arts").mkdir()
    (tmp_path / "arts" / "1.txt").write_text("Police said the fire is out. It burned on Monday.")
    decomposed = unicodedata.normalize("NFD", "Café owners said the rent rose.")
    (tmp_path / "arts" / "n.txt").write_text(decomposed)

    def task(i, article, start, end, label, who, text=None):
        return {"id": i, "data": {"text": text, "meta": {"article": article, "start": start, "end": end}},
                "annotations": [{"id": i, "completed_by": who, "result": [
                    {"from_name": "label", "type": "choices", "value": {"choices": [label]}}]}]}

    tasks = [task(1, 1, 0, 28, "attributed", "a"), task(2, "1", 0, 28, "attributed", "b"),
             task(3, "1", "0", "28", "attributed", "c"),  # article 1 and "1", offset 0 and "0": one sentence
             task(4, "n", 0, len(decomposed), "attributed", "a", text=unicodedata.normalize("NFC", decomposed))]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    result = read_labelstudio(LabelStudioSource(path=tmp_path / "export.json", articles=tmp_path / "arts"),
                              progress=False)
    assert sorted(e.article for e in result.examples) == ["1", "n"]
    assert result.skipped["task_of_a_sentence_seen_before"] == 2


@pytest.mark.parametrize(("tasks", "message"), [
    ([{**_ls_task(), "annotations": [{"id": 9, "result": [{"from_name": "label", "type": "choices",
                                                           "value": {"choices": ["verified"] * 20_000}}]}]}],
     r"found 20,000 \('verified', 'verified', 'verified', \.\.\.\); make the control single-choice"),
    ([_ls_task(article="x" * 300)], r"expected an article id that names a file in .*found one of 300 bytes"),
])
def test_label_studio_exports_too_large_to_show_or_name_are_short_lines(tmp_path, tasks, message):
    from trainer.config import LabelStudioSource
    from trainer.data.labelstudio import read_labelstudio

    (tmp_path / "arts").mkdir()
    (tmp_path / "arts" / "a.txt").write_text("The mayor said so. It rained.")
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    with pytest.raises(DataError, match=message) as error:
        read_labelstudio(LabelStudioSource(path=tmp_path / "export.json", articles=tmp_path / "arts"), progress=False)
    assert len(str(error.value)) < 400


def test_a_name_too_long_for_the_file_system_is_one_line(trained_sklearn, tmp_path, capsys):
    import errno

    from trainer.cli import main
    from trainer.infra.crash import disk_message

    assert disk_message(OSError(errno.ENAMETOOLONG, "File name too long", f"/x/{'a' * 300}/b")) == (
        f"expected file names of at most 255 bytes, found one of 300 ({'a' * 40}...); choose a shorter path or name")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The mayor said so.")
    assert main(_tag_args(trained_sklearn[1].model_dir, tmp_path / "in", tmp_path / ("o" * 300))) == 2
    assert "error: expected file names of at most 255 bytes, found one of 300" in capsys.readouterr().err


def test_a_password_in_a_config_is_never_printed_or_saved(project, capsys):
    from trainer.cli import main
    from trainer.outputs.model_folder import write_training_files

    config = project.experiment("secret", {"backend": "sklearn"})
    uri = "https://bob:hunter2@example.org/x?token=t0ken"
    assert main(["validate", "--config", str(config), "--set", f"tracking.uri={uri}"]) == 0
    out = capsys.readouterr().out
    assert "https://bob:***@example.org/x?token=***" in out and "hunter2" not in out and "t0ken" not in out
    write_training_files(project.root, {"tracking": {"uri": uri}, "sources": [uri]}, {}, {}, project.root)
    for name in ("training_config.json", "training_config.yaml"):
        saved = (project.root / name).read_text()
        assert "bob:***@" in saved and "hunter2" not in saved and "t0ken" not in saved
    from trainer.infra.secrets import mask_secrets

    # a quote ends a secret parameter (the error's closing quote stays), and a quoted value is masked whole
    assert mask_secrets("found 'sqlite:///x.db?password=pw' (x)") == "found 'sqlite:///x.db?password=***' (x)"
    assert mask_secrets('a?token="p w"&b=1') == "a?token=***&b=1"


def test_a_link_out_of_a_folder_without_a_manifest_is_refused(trained_sklearn, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained_sklearn[1].model_dir, folder)
    (folder / "manifest.json").unlink()  # an older folder: nothing checks its files' hashes
    shutil.move(folder / "trainer_model.json", tmp_path / "elsewhere.json")
    (folder / "trainer_model.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ModelLoadError, match=r"trainer_model\.json: expected the files of the model folder, found a "
                                             r"link to .*elsewhere\.json outside it"):
        load_classifier(folder)
    with pytest.raises(ModelLoadError, match=r"expected a model folder, found a file"):
        load_classifier(tmp_path / "elsewhere.json")


def test_a_sweep_space_that_names_a_key_twice_is_refused(tmp_path):
    from trainer.workflows.sweep import load_space

    (tmp_path / "space.yaml").write_text("study: s\nparams:\n  model.C: {type: float, low: 0.1, high: 1}\n"
                                         "  'model.C ': {type: float, low: 1, high: 2}\n")
    with pytest.raises(ConfigError, match=r"params: expected each config key once, found 'model\.C' twice"):
        load_space(tmp_path / "space.yaml", None)


def test_an_output_inside_the_folder_it_comes_from_is_refused(trained_sklearn, tmp_path):
    from types import SimpleNamespace

    from trainer.models.export import export_model
    from trainer.workflows.label_issues import label_issues

    model_dir = trained_sklearn[1].model_dir
    with pytest.raises(ConfigError, match=r"--output: expected a folder outside the model folder .*found .*onnx inside"):
        export_model(model_dir, model_dir / "onnx", "onnx")
    assert not (model_dir / "onnx").exists()
    dataset = SimpleNamespace(path=tmp_path / "dataset")  # the check comes before any work on it
    with pytest.raises(ConfigError, match=r"--issues-output: expected a folder outside the dataset .*which its next "
                                          r"build would delete"):
        label_issues(dataset, dataset.path / "issues")


def test_tag_spark_refuses_a_parquet_text_column_that_holds_no_text(tmp_path):
    pytest.importorskip("pyspark")
    from types import SimpleNamespace

    from trainer.workflows.spark_tag import _read_articles

    # a stand-in for a Spark session whose Parquet reader gives these column types (no JVM started);
    # Spark would cast the lists to text ("[x, y]") and tag them, where `trainer tag` skips each as not_text
    kinds = {"id": "string", "text": "array<string>"}
    column = lambda kind: SimpleNamespace(dataType=SimpleNamespace(simpleString=lambda: kind))  # noqa: E731
    frame = SimpleNamespace(columns=list(kinds), schema={c: column(k) for c, k in kinds.items()})
    spark = SimpleNamespace(read=SimpleNamespace(parquet=lambda path: frame, json=None))
    with pytest.raises(DataError, match=r"t\.parquet: expected text in the 'text' column, found array<string> in every "
                                        r"row; set --text-column"):
        _read_articles(spark, str(tmp_path / "t.parquet"), "text", "id")
