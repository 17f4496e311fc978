"""Faults: kills at known points, two commands at once, a tracking store that dies or is read-only,
outputs that are written whole or not at all, and `--resume` with other settings.

Every kill or pause happens at a named function (tests/kill_at.py, tests/pause_at.py), never after a sleep.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY_TRAINING, free_port, make_project, start_mlflow_server, stop, tiny_model_section
from trainer import load_classifier
from trainer.infra.atomic import atomic_folder, remove_stale_siblings
from trainer.cli import main
from trainer.config import TrackingConfig, load_config, load_data_config
from trainer.data.build import build_dataset, load_built
from trainer.errors import ConfigError, DataError, ModelLoadError
from trainer.workflows.evaluate import evaluate
from trainer.labels import LABELS
from trainer.infra.locks import alive, process_started
from trainer.outputs.model_folder import evaluation_dir, read_run
from trainer.workflows.train import train

TESTS = Path(__file__).parent
NO_TRACKING = TrackingConfig(enabled=False)


def _trainer(helper: str, *args: str, cwd: Path, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """`trainer ARGS` under tests/kill_at.py or tests/pause_at.py (see their docstrings)."""
    return subprocess.Popen([sys.executable, str(TESTS / helper), *args], cwd=cwd, text=True,
                            env={**os.environ, **(env or {})}, **popen)


def _killed_at(target: str, calls: int, sig: signal.Signals, *args: str, cwd: Path, env=None) -> subprocess.CompletedProcess:
    process = _trainer("kill_at.py", target, str(calls), sig.name, *args, cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(timeout=300)
    assert process.returncode in (-sig, 128 + sig), err[-800:]
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


class Paused:
    """A `trainer` command held right after the N-th call of `target` returns, until `release()`."""

    def __init__(self, target: str, *args: str, cwd: Path, env=None, calls: int = 1):
        self.process = _trainer("pause_at.py", target, str(calls), *args, cwd=cwd, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = []
        for line in self.process.stderr:  # blocks until the command reaches the point (or ends)
            if line.strip() == "paused":
                return
            self.stderr.append(line)
        raise AssertionError(f"never reached {target}: {''.join(self.stderr)[-800:]}")

    def release(self) -> subprocess.CompletedProcess:
        out, err = self.process.communicate("\n", timeout=300)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, "".join(self.stderr) + err)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer.cli", "-q", *args], capture_output=True, text=True,
                          timeout=300)


def _one_error_line(stderr: str, pattern: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr[-1500:]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), stderr[-1500:]


# ---------------------------------------------------------------- swaps


@pytest.mark.parametrize(
    ("leftover", "target_there", "after"),
    [
        (".m.old-{dead}", False, "restored"),   # killed between the two renames: the previous output comes back
        (".m.old-{dead}", True, "removed"),     # killed after both: the new output stays
        (".m.tmp-{dead}", True, "removed"),     # killed while writing
        (".m.tmp-{alive}", True, "kept"),       # another process still writing
    ],
)
def test_leftovers_of_a_kill_are_repaired(tmp_path, leftover, target_there, after):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    parent = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    stale = tmp_path / leftover.format(dead=dead, alive=parent.pid)
    stale.mkdir()
    (stale / "which").write_text("previous")
    if target_there:
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "which").write_text("current")
    remove_stale_siblings(tmp_path / "m")
    parent.communicate("")
    expected = {"restored": "previous", "removed": "current", "kept": "current"}[after]
    assert (tmp_path / "m" / "which").read_text() == expected
    assert stale.exists() == (after == "kept")


def test_a_refused_swap_leaves_the_target_and_no_temporary(tmp_path):
    target = tmp_path / "report"
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("first")

    def refuse() -> None:
        raise ModelLoadError("replaced")

    with pytest.raises(ModelLoadError), atomic_folder(target, check=refuse) as tmp:
        (tmp / "a").write_text("second")
    assert (target / "a").read_text() == "first" and sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_reused_pid_is_not_taken_for_the_process_that_had_it():
    started = process_started(os.getpid())
    assert alive(os.getpid(), started) and not alive(os.getpid(), str(int(started) - 1))


# ---------------------------------------------------------------- evaluation reports


@pytest.fixture()
def model_copy(trained_sklearn, tmp_path):
    """A private copy of the shared TF-IDF model folder, with one evaluation report saved in it."""
    # in the project it was trained in, whose files its config names (relative to the project)
    folder = trained_sklearn[0].root / "models" / f"tfidf-{tmp_path.name}"
    shutil.copytree(trained_sklearn[1].model_dir, folder)
    result = evaluate(folder, split="test", tracking=NO_TRACKING, n_resamples=20)
    return folder, result.report_dir


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (a report has tables/ inside) by its relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_evaluation_keeps_the_previous_report(model_copy, sig):
    folder, report_dir = model_copy
    before = _files(report_dir)
    _killed_at("trainer.workflows.evaluate:score_stream", 1, sig, "evaluate", "--model", str(folder), "--resamples", "20",
               cwd=folder.parent)  # misclassified.jsonl is written by then, report.json not yet
    assert _files(report_dir) == before
    leftovers = list(report_dir.parent.glob(".*.tmp-*"))
    assert len(leftovers) == (0 if sig == signal.SIGTERM else 1)
    evaluate(folder, split="test", tracking=NO_TRACKING, n_resamples=20)
    assert not list(report_dir.parent.glob(".*"))


@pytest.mark.parametrize("resamples", ["0", "-5", "3"])
def test_resamples_too_few_are_refused_before_any_work(model_copy, resamples):
    folder, report_dir = model_copy
    before = sorted(p.name for p in folder.rglob("*"))
    done = _cli("evaluate", "--model", str(folder), "--resamples", resamples)
    assert done.returncode == 2
    _one_error_line(done.stderr, rf"--resamples: expected a whole number of at least 10 .*found {resamples}")
    assert sorted(p.name for p in folder.rglob("*")) == before


def test_output_that_holds_other_files_is_refused(model_copy, tmp_path):
    folder, _ = model_copy
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "todo.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"--output: expected a new folder or an earlier report's folder"):
        evaluate(folder, output=mine, tracking=NO_TRACKING, n_resamples=20)
    assert [p.name for p in mine.iterdir()] == ["todo.txt"]


def test_a_model_replaced_while_evaluated_gets_no_report(project, monkeypatch):
    """`train --overwrite` swaps the folder while `evaluate` scores it: the report goes nowhere, and
    the new model's folder gets no report tagged with the old run."""
    import trainer.workflows.evaluate as evaluation

    config = load_config(project.experiment("swap", {"backend": "sklearn"}))
    first = train(config)
    replaced = {}
    original = evaluation.evaluate_rows

    def replace_then_score(*args, **kwargs):
        if not replaced:
            replaced["run"] = train(config, overwrite=True).run_id
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_rows", replace_then_score)
    with pytest.raises(ModelLoadError, match=rf"expected the model folder of training run {first.run_id} that was "
                                             r"evaluated, found it replaced \(training run [0-9a-f]+\)") as caught:
        evaluate(first.model_dir, split="test", tracking=TrackingConfig(uri=project.tracking_uri), n_resamples=20)
    assert f"(training run {replaced['run']})" in str(caught.value)
    assert read_run(first.model_dir)["run_id"] == replaced["run"] != first.run_id
    assert not evaluation_dir(first.model_dir, "fixture:test").exists()
    assert _runs(project, "tags.`trainer.kind` = 'evaluate'") == []  # nothing logged as an evaluation of either


# ---------------------------------------------------------------- datasets


def _articles(folder: Path, texts: list[str]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for n, text in enumerate(texts):
        (folder / f"a{n}.txt").write_text(text)


DISTINCT = [f"Story {n} opened here. Officials said {n} roads were closed. The river rose {n} metres." for n in range(8)]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (DISTINCT[:2], r"found none in validation and test: 2 article\(s\) in all, and a source needs at least 3"),
        (DISTINCT[:1], r"found none in validation and test: 1 article\(s\) in all"),
        (["The council met. Officials said it rained."] * 8,
         r"found none in validation and test: every sentence of its articles repeats a sentence of an earlier split"),
    ],
)
def test_a_dataset_that_would_not_load_is_never_written(project, texts, message):
    articles = project.root / "articles"
    config_path = project.write("data/x.yaml", {"name": "x", "sources": [{"kind": "folder", "path": str(articles)}],
                                                "output_dir": str(project.root / "processed")})
    _articles(articles, DISTINCT)
    good = build_dataset(load_data_config(config_path), progress=False)
    _articles(articles, texts)
    done = _cli("build-data", "--config", str(config_path))
    assert done.returncode == 2
    _one_error_line(done.stderr, message)
    kept = load_built(good.path)  # the previous build, whole, still in place
    assert kept.fingerprint == good.fingerprint and len(kept.dataset["test"]) == len(good.dataset["test"]) > 0
    assert sorted(p.name for p in good.path.parent.iterdir()) == [".locks", "x"]


def test_a_dataset_that_no_longer_loads_is_rebuilt(project):
    config = load_data_config(project.write("data/fixture.yaml", project.data_config()))
    built = build_dataset(config, progress=False)
    for arrow in (built.path / "test").glob("*.arrow"):
        arrow.unlink()
    with pytest.raises(DataError, match=r"expected a dataset that loads, found .*rebuild it with `trainer build-data"):
        load_built(built.path)
    again = build_dataset(config, progress=False)
    assert len(again.dataset["test"]) == len(built.dataset["test"]) > 0


# ---------------------------------------------------------------- two at once


def test_two_builds_of_one_dataset_one_proceeds(project):
    articles = project.root / "articles"
    _articles(articles, DISTINCT)
    config = project.write("data/x.yaml", {"name": "x", "sources": [{"kind": "folder", "path": str(articles)}],
                                           "output_dir": str(project.root / "processed")})
    first = Paused("trainer.data.build:read_source", "build-data", "--config", str(config), cwd=project.root)
    second = _cli("build-data", "--config", str(config))
    assert second.returncode == 2
    _one_error_line(second.stderr, rf"dataset 'x': expected no other build of it in progress, found one "
                                   rf"\(PID {first.process.pid}")
    done = first.release()
    assert done.returncode == 0, done.stderr[-800:]
    assert len(load_built(project.root / "processed" / "x").dataset["train"]) > 0


@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_two_trains_of_one_run_name_one_proceeds(project, flags):
    config = project.experiment("twice", {"backend": "sklearn"})
    first = Paused("trainer.workflows.train:build_dataset", "train", "--config", str(config), cwd=project.root)
    second = _cli("train", "--config", str(config), *flags)
    assert second.returncode == 2
    _one_error_line(second.stderr, rf"run 'twice': expected no other train of it in progress, found one "
                                   rf"\(PID {first.process.pid}, lock .*/\.locks/twice\.lock\)")
    done = first.release()
    assert done.returncode == 0, done.stderr[-800:]
    run_id = read_run(project.root / "models" / "twice")["run_id"]
    assert f"MLflow run:   {run_id}" in done.stdout  # the model folder is the first run's
    assert [p.name for p in (project.root / "models").iterdir() if p.name != ".locks"] == ["twice"]


def test_two_tags_into_one_output_one_proceeds(trained_sklearn, tmp_path):
    articles = tmp_path / "articles"
    _articles(articles, DISTINCT)
    args = ("tag", "--model", str(trained_sklearn[1].model_dir), "--input", str(articles), "--output",
            str(tmp_path / "out"), "--part-sentences", "5")
    first = Paused("trainer.workflows.tagging:_write_table", *args, cwd=tmp_path)  # its first part is written
    second = _cli(*args)
    assert second.returncode == 2
    _one_error_line(second.stderr, rf"--output .*out: expected no other trainer tag into it in progress, found one "
                                   rf"\(PID {first.process.pid}")
    done = first.release()
    assert done.returncode == 0, done.stderr[-800:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["done"]) == len(DISTINCT)
    assert sorted(p.name for p in (tmp_path / "out" / "sentences").iterdir()) == [p["name"] for p in manifest["parts"]]


def test_two_exports_to_one_folder_never_replace_each_other(trained_tiny, tmp_path, monkeypatch):
    """Both pass the "new folder" check; the one that finishes second is refused under the swap lock."""
    from trainer.models.export import export_model
    from trainer.registry import ExportFormat

    output = tmp_path / "int8"
    original = ExportFormat.run

    def the_other_finishes_first(self, *args, **kwargs):
        output.mkdir()
        (output / "theirs").write_text("the other export")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ExportFormat, "run", the_other_finishes_first)
    with pytest.raises(ConfigError, match=r"--output: expected a new folder, found existing .*int8"):
        export_model(trained_tiny[1].model_dir, output, "int8")
    assert [p.name for p in output.iterdir()] == ["theirs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8"]


# ---------------------------------------------------------------- runs that end


def _runs(project, where: str) -> list:
    client = MlflowClient(tracking_uri=project.tracking_uri)
    return client.search_runs([client.get_experiment_by_name("tests").experiment_id], where)


def _named(name: str) -> str:
    return f"tags.`mlflow.runName` = '{name}'"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_is_marked_killed(project, tmp_path, monkeypatch, sig):
    """SIGTERM: the run ends KILLED at once. SIGKILL: it stays RUNNING, and the next tracked command
    finds it by its PID file and ends it KILLED."""
    monkeypatch.setenv("TRAINER_CACHE", str(tmp_path / "cache"))
    config = project.experiment("killed", {"backend": "sklearn"})
    _killed_at("trainer.workflows.train:evaluate_rows", 1, sig, "train", "--config", str(config), cwd=project.root)
    [run] = _runs(project, _named("killed"))
    pid_files = list((tmp_path / "cache" / "runs").rglob("*.json"))
    if sig == signal.SIGTERM:
        assert run.info.status == "KILLED" and pid_files == []
        return
    assert run.info.status == "RUNNING" and [p.stem for p in pid_files] == [run.info.run_id]
    evaluate_later = train(load_config(config))  # the next command
    statuses = {r.info.run_id: r.info.status for r in _runs(project, _named("killed"))}
    assert statuses == {run.info.run_id: "KILLED", evaluate_later.run_id: "FINISHED"}
    assert list((tmp_path / "cache" / "runs").rglob("*.json")) == []


def test_a_tracking_server_that_dies_mid_run_costs_a_bounded_wait(project, tmp_path, monkeypatch, capsys):
    """The server is killed during training: a few HTTP attempts (not MLflow's 8 per call), the model
    is saved, the printout says tracking failed, and the next command ends the run as FAILED."""
    import urllib3.connectionpool

    import trainer.workflows.train as training

    monkeypatch.setenv("TRAINER_CACHE", str(tmp_path / "cache"))
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    server, uri = start_mlflow_server(tmp_path / "server", port)
    attempts_after_death = []
    original_request = urllib3.connectionpool.HTTPConnectionPool._make_request
    original_evaluate = training.evaluate_rows

    def counted(self, *args, **kwargs):
        if server.poll() is not None:
            attempts_after_death.append(1)
        return original_request(self, *args, **kwargs)

    def kill_server_then_evaluate(*args, **kwargs):
        stop(server, signal.SIGKILL)
        while _listening(port):  # its workers are going; no request may reach them
            pass
        return original_evaluate(*args, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "_make_request", counted)
    monkeypatch.setattr(training, "evaluate_rows", kill_server_then_evaluate)
    config = project.experiment("dies", {"backend": "sklearn"}, tracking={"uri": uri, "experiment": "tests"})
    try:
        assert main(["-q", "train", "--config", str(config)]) == 0
        out, err = capsys.readouterr()
        assert 0 < len(attempts_after_death) <= 4, attempts_after_death  # 3 for the first call, 1 to end the run
        assert "(None)" not in out and "(incomplete)" in out and "MLflow tracking failed (" in err
        assert load_classifier(project.root / "models" / "dies").predict(["The mayor said so."])[0].label in LABELS
        run_id = read_run(project.root / "models" / "dies")["run_id"]
        [pid_file] = list((tmp_path / "cache" / "runs").rglob("*.json"))
        assert json.loads(pid_file.read_text())["status"] == "FAILED"

        monkeypatch.setattr(training, "evaluate_rows", original_evaluate)
        server, uri = start_mlflow_server(tmp_path / "server", port)  # the server is back
        assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "RUNNING"
        train(load_config(config, ["run_name=after"]))  # the next command
        assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "FAILED"
        assert not pid_file.exists()
    finally:
        stop(server)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_read_only_tracking_store_is_one_line(project):
    config = project.experiment("ro", {"backend": "sklearn"})
    train(load_config(config))  # creates mlflow.db
    db = project.root / "mlflow.db"
    db.chmod(0o444)
    immutable = os.access(db, os.W_OK) and subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode == 0
    if os.access(db, os.W_OK):
        pytest.skip("cannot make a file read-only here (root without chattr)")
    try:
        done = _cli("train", "--config", str(config), "--overwrite")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(db)], check=True)
        db.chmod(0o644)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "Traceback" not in done.stderr and "SQLAlchemy" not in done.stderr
    assert f"MLflow tracking failed (starting the run failed: PermissionError: {db} is read-only" in done.stderr
    assert load_classifier(project.root / "models" / "ro").predict(["The mayor said so."])[0].label in LABELS


# ---------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, tiny_model_dir):
    """A tiny transformer run killed after its second checkpoint (nothing else is written)."""
    project = make_project(tmp_path_factory.mktemp("interrupted"))
    training = {**TINY_TRAINING, "checkpoint_every_steps": 2}
    config = project.experiment("cut", tiny_model_section(tiny_model_dir), training)
    _killed_at("trainer.models.checkpoint:Checkpointer.save", 2, signal.SIGKILL, "train", "--config", str(config),
               cwd=project.root)
    return project, config


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["training.batch_size=4"], r"training\.batch_size 4 \(checkpoint: 8\)"),
        (["training.learning_rate=0.01"], r"training\.learning_rate 0\.01 \(checkpoint: 0\.002\)"),
        (["training.batch_size=4", "training.learning_rate=0.01"],
         r"training\.batch_size 4 \(checkpoint: 8\); training\.learning_rate 0\.01 \(checkpoint: 0\.002\)"),
        (["training.seed=8"], r"training\.seed 8 \(checkpoint: 7\)"),
        (["model.max_length=32"], r"model\.max_length 32 \(checkpoint: 64\)"),
        (["data.split.seed=4"], r"data\.split\.seed 4 \(checkpoint: 3\)"),
    ],
)
def test_resume_with_other_settings_is_refused_naming_them(interrupted, overrides, named):
    project, config = interrupted
    with pytest.raises(ConfigError, match=rf"--resume: expected the settings the checkpoint of run 'cut' was "
                                          rf"trained with, found {named}; resume with the same config"):
        train(load_config(config, overrides), resume=True)
    assert (project.root / "models" / ".cut.checkpoint" / "state.pt").is_file()  # still there to resume


def test_resume_on_changed_data_is_refused(interrupted):
    project, config = interrupted
    article = project.root / "corpus" / "articles" / "a1-flood.txt"
    text = article.read_text()
    article.write_text(text + "\nOfficials said the water fell.\n")
    try:
        with pytest.raises(ConfigError, match=r"--resume: expected the dataset the checkpoint was trained on "
                                              r"\(fingerprint [0-9a-f]{12}\), found [0-9a-f]{12}: its inputs changed"):
            train(load_config(config), resume=True)
    finally:
        article.write_text(text)
    assert (project.root / "models" / ".cut.checkpoint" / "state.pt").is_file()


def test_a_tag_into_a_link_to_an_output_in_progress_is_refused(trained_sklearn, tmp_path):
    articles = tmp_path / "articles"
    _articles(articles, DISTINCT)
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out", target_is_directory=True)
    args = ("tag", "--model", str(trained_sklearn[1].model_dir), "--input", str(articles), "--part-sentences", "5")
    first = Paused("trainer.workflows.tagging:_write_table", *args, "--output", str(tmp_path / "out"), cwd=tmp_path)
    second = _cli(*args, "--output", str(tmp_path / "link"))
    assert second.returncode == 2
    _one_error_line(second.stderr,
                    rf"expected no other trainer tag into it in progress, found one \(PID {first.process.pid}")
    assert first.release().returncode == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["done"]) == len(DISTINCT)


def test_a_tag_killed_inside_a_long_article_loses_nothing_and_repeats_nothing(trained_sklearn, tmp_path):
    from trainer.workflows.tagging import read_tables

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "long.txt").write_text("He said so. " * 3_000)
    args = ("tag", "--model", str(trained_sklearn[1].model_dir), "--input", str(tmp_path / "in"), "--output",
            str(tmp_path / "out"), "--part-sentences", "1000")
    _killed_at("trainer.workflows.tagging:_write_table", 2, signal.SIGKILL, *args, cwd=tmp_path)
    assert _cli(*args).returncode == 0
    sentences = read_tables(tmp_path / "out")
    assert len(sentences) == 3_000 and not sentences.duplicated(["article_id", "sentence_index"]).any()


def test_too_many_resamples_are_refused_before_any_work(model_copy):
    done = _cli("evaluate", "--model", str(model_copy[0]), "--resamples", "100000000")
    assert done.returncode == 2
    _one_error_line(done.stderr, r"--resamples: expected at most 100,000 bootstrap resamples, found 100,000,000")


# ---------------------------------------------------------------- full, read-only and size-limited disks


def _limited(limit_kib: int, *args: str) -> subprocess.CompletedProcess:
    """A trainer command under `ulimit -f` (a file past it fails with EFBIG, as Python ignores SIGXFSZ)."""
    return subprocess.run(["bash", "-c", f'ulimit -f {limit_kib}; exec "$@"', "trainer", sys.executable, "-m",
                           "trainer.cli", "-q", *args], capture_output=True, text=True, timeout=300)


def test_a_file_size_limit_is_the_disk_line_and_nothing_is_half_written(project):
    config = project.write("data/fixture.yaml", project.data_config())
    done = _limited(8, "build-data", "--config", str(config))
    assert done.returncode == 2, done.stderr[-1500:]
    _one_error_line(done.stderr, r"expected room to write the command's output, found a file over the size limit")
    assert not (project.root / "processed" / "fixture").exists()


def _tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode == 0


@pytest.mark.parametrize("state", ["full", "read-only"])
def test_train_on_a_full_or_read_only_disk_is_one_line(project, state):
    disk = project.root / "disk"
    if not _tmpfs(disk, "size=256k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        if state == "full":
            subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'filler'}", "bs=64k"], capture_output=True)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        config = project.experiment("disk", {"backend": "sklearn"}, output_dir=str(disk / "models"))
        done = _cli("train", "--config", str(config))
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert done.returncode == 2, done.stderr[-1500:]
    _one_error_line(done.stderr, "found the disk is full" if state == "full" else "found .* read-only")


def test_an_export_that_fills_the_disk_blames_the_disk_not_torch():
    import errno

    from trainer.models.onnx import disk_error_behind

    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as inner:
            raise RuntimeError("exporter failed") from inner
    except RuntimeError as wrapped:
        assert disk_error_behind(wrapped) is full
    assert disk_error_behind(RuntimeError("a real exporter failure")) is None


def test_a_workbook_the_disk_refuses_is_one_line_and_no_report(trained_sklearn, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The mayor said so. " * 40)
    assert main(["-q", "tag", "--model", str(trained_sklearn[1].model_dir), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out")]) == 0
    # openpyxl's temporary sheet files hit the limit; their cleanup printed a traceback at exit
    done = _limited(2, "summarize", str(tmp_path / "out"), "--by", "path", "--report", str(tmp_path / "report"))
    assert done.returncode == 2, done.stderr[-1500:]
    _one_error_line(done.stderr, r"expected room to write the command's output, found a file over the size limit")
    assert "Exception ignored" not in done.stderr and not (tmp_path / "report").exists()
