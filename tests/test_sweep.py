"""`trainer sweep`: the space is validated like a config, workers share one study and one parent run,
a killed sweep continues, and the training loop's epochs reach the pruner."""

from __future__ import annotations

import json

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import TINY_TRAINING, tiny_model_section
from trainer.errors import ConfigError
from trainer.workflows.sweep import load_space, sweep

KILL_AT = Path(__file__).with_name("kill_at.py")
TFIDF_SPACE = {
    "study": "tfidf-test", "pruner": "none", "seed": 3, "startup_trials": 3,
    "params": {"model.C": {"type": "float", "low": 0.1, "high": 100.0, "log": True},
               "model.ngram_max": {"type": "int", "low": 1, "high": 3},
               "model.class_weight": {"type": "categorical", "choices": ["balanced", None]}},
}


def _space(project, content=None, name="space.yaml"):
    return project.write(f"sweeps/{name}", content or TFIDF_SPACE)


def _study(project, name="tfidf-test"):
    storage = f"sqlite:///{project.root / 'models' / 'sweeps' / name / 'optuna.db'}"
    return optuna.load_study(study_name=name, storage=storage)


def _runs(project):
    import mlflow

    client = mlflow.MlflowClient(project.tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, max_results=1000)


@pytest.mark.parametrize(("change", "message"), [
    ({"model.ngram_maxx": {"type": "int", "low": 1, "high": 2}},
     r"params.model.ngram_maxx: unknown key \(did you mean 'ngram_max'\?\)"),
    ({"model.C": {"type": "float", "low": 5, "high": 1}}, r"params.model.C: expected low < high, found low 5.0"),
    ({"model.C": {"type": "float", "low": 0, "high": 1, "log": True}}, r"expected low > 0 with log: true"),
    ({"model.ngram_max": {"type": "int", "low": 1, "high": 9}}, r"params.model.ngram_max: expected less than or equal"),
    ({"training.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4}},
     r"expected a key that the sklearn backend reads \(training.seed\), found one it ignores"),
    ({"run_name": {"type": "categorical", "choices": ["a"]}}, r"params.run_name: expected a model, training or data"),
    ({"model.C": {"type": "uniform", "low": 1, "high": 2}}, r"expected one of 'float', 'int', 'categorical'"),
    ({"model.min_df": {"type": "int", "low": 1, "high": 9, "step": 2, "log": True}}, r"expected step: 1 with log"),
])
def test_a_bad_space_is_one_clear_line(project, change, message):
    config = project.experiment("tfidf", {"backend": "sklearn"})
    space = _space(project, {**TFIDF_SPACE, "params": change})
    with pytest.raises(ConfigError, match=message) as error:
        load_space(space, config)

    assert "\n" not in str(error.value)


def test_two_workers_share_the_budget_and_the_parent_run(project):
    config = project.experiment("tfidf", {"backend": "sklearn"})
    space = _space(project)
    command = [sys.executable, "-m", "trainer.cli", "-q", "sweep", "--config", str(config), "--space", str(space),
               "--trials", "8"]
    workers = [subprocess.Popen(command, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = _study(project)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 8
    assert {t.user_attrs["worker"].rpartition(":")[2] for t in complete} == {str(w.pid) for w in workers}
    others = study.get_trials(states=(TrialState.FAIL,))
    assert all(t.user_attrs.get("surplus") for t in others)  # only a place taken twice at once, never run
    assert len({tuple(sorted(t.params.items())) for t in complete}) == 8  # no trial drawn twice
    runs = _runs(project)
    parents = [r for r in runs if r.data.tags.get("trainer.kind") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("trainer.kind") == "sweep-trial"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(r.data.tags["trial_number"]) for r in trials) == sorted(t.number for t in complete)
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parents[0].info.run_id}
    assert all(r.data.tags["trial_state"] == "complete" and "trial.model.C" in r.data.params for r in trials)
    best = max(complete, key=lambda t: t.value)
    assert parents[0].data.tags["best_trial"] == str(best.number)
    shown = parents[0].data.params  # the parent says what was searched, over what, and where it ran from
    assert shown["sweep.study"] == "tfidf-test" and shown["model.backend"] == "sklearn"
    assert json.loads(shown["search.model.C"])["type"] == "float" and "model.C" not in shown
    assert parents[0].data.tags["mlflow.source.type"] == "LOCAL" and parents[0].data.tags["mlflow.source.name"]
    folder = project.root / "models" / "sweeps" / "tfidf-test"
    assert (folder / "optimization_history.png").is_file() and (folder / "param_importances.png").is_file()
    best_config = yaml.safe_load((folder / "best.yaml").read_text())
    assert best_config["model"]["C"] == pytest.approx(best.params["model.C"])
    assert not (project.root / "models" / "tfidf").exists()  # trials write no model folders


def test_a_killed_sweep_continues_with_the_interrupted_trial_failed(project):
    config = project.experiment("tfidf", {"backend": "sklearn"})
    space = _space(project)
    args = ["sweep", "--config", str(config), "--space", str(space), "--trials", "4"]
    # killed right after the third trial's fit: trials 0 and 1 are complete, trial 2 is running
    killed = subprocess.run([sys.executable, str(KILL_AT), "trainer.models.sklearn:SklearnBackend.fit", "3", "SIGKILL",
                             *args], cwd=project.root, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL
    before = _study(project).get_trials()
    assert [t.state for t in before] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    result = sweep(config, space, 4, progress=False)
    after = _study(project).get_trials()
    assert [t.state for t in after] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
                                        TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.value for t in after[:2]] == [t.value for t in before[:2]]  # kept, not run again
    assert result.ran_here == 2 and result.finished == 4
    runs = {r.data.tags.get("trial_number"): r for r in _runs(project) if r.data.tags.get("trainer.kind") == "sweep-trial"}
    assert runs["2"].info.status == "FAILED" and runs["2"].data.tags["trial_state"] == "failed"
    assert len({r.data.tags["mlflow.parentRunId"] for r in runs.values()}) == 1


def test_a_study_refuses_another_space(project):
    config = project.experiment("tfidf", {"backend": "sklearn"})
    sweep(config, _space(project), 1, progress=False)
    changed = {**TFIDF_SPACE, "params": {"model.C": {"type": "float", "low": 1.0, "high": 2.0}}}
    with pytest.raises(ConfigError, match="expected the space and base config that study 'tfidf-test'"):
        sweep(config, _space(project, changed, "other.yaml"), 2, progress=False)


def test_transformer_epochs_reach_the_pruner(project, tiny_model_dir):
    config = project.experiment("tiny", tiny_model_section(tiny_model_dir), {**TINY_TRAINING, "epochs": 2})
    space = _space(project, {"study": "tiny-test", "pruner": "median", "startup_trials": 1, "params": {
        "training.learning_rate": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True}}})
    result = sweep(config, space, 2, progress=False)
    trials = _study(project, "tiny-test").get_trials()
    assert result.finished == 2
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials if t.state == TrialState.COMPLETE)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    trial_runs = [r for r in _runs(project) if r.data.tags.get("trainer.kind") == "sweep-trial"]
    assert all("val_macro_f1" in r.data.metrics for r in trial_runs)
    assert all(r.info.status == "FINISHED" for r in trial_runs)  # pruned ones too: their state is a tag


@pytest.mark.skipif(not os.environ.get("TRAINER_TEST_POSTGRES"),
                    reason="no PostgreSQL server: .ci/run starts one on 127.0.0.1 (.ci/postgres.sh)")
def test_two_workers_on_a_real_postgresql_server(project):
    url = os.environ["TRAINER_TEST_POSTGRES"]
    study_name = f"pg-{project.root.name}-{os.getpid()}"  # the server outlives one test
    config = project.experiment("tfidf", {"backend": "sklearn"})
    space = _space(project, {**TFIDF_SPACE, "study": study_name})
    command = [sys.executable, "-m", "trainer.cli", "-q", "sweep", "--config", str(config), "--space", str(space),
               "--trials", "4", "--storage", url]
    workers = [subprocess.Popen(command, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name=study_name, storage=url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 4 and len({tuple(sorted(t.params.items())) for t in complete}) == 4
    trials = [r for r in _runs(project) if r.data.tags.get("trainer.study") == study_name
              and r.data.tags.get("trainer.kind") == "sweep-trial"]
    assert len(trials) == 4 and len({r.data.tags["mlflow.parentRunId"] for r in trials}) == 1


def test_a_storage_that_cannot_be_opened_is_one_line(project):
    config = project.experiment("tfidf", {"backend": "sklearn"})
    done = subprocess.run([sys.executable, "-m", "trainer.cli", "-q", "sweep", "--config", str(config), "--space",
                           str(_space(project)), "--trials", "2", "--storage", "postgresql://nobody@127.0.0.1:1/none"],
                          cwd=project.root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--storage: expected a database URL Optuna can open" in done.stderr.strip().splitlines()[-1]
