"""`trainer sweep`: hyperparameter search with Optuna, every trial a nested MLflow run.

The search space is a YAML file over config keys, in the dotted names of `--set`
(`configs/sweeps/*.yaml`, typed as `config.SweepSpace`). A trial applies its values to the base
config exactly as `--set` would, trains on the train split and scores on validation; the test
split is never looked at. The Optuna study lives in RDB storage (SQLite by default, a PostgreSQL
URL for many machines), so every worker that runs `trainer sweep` against the same storage and
study name shares one study: Optuna's own distributed mode.

- **Budget.** `--trials N` is the study's budget of finished (complete or pruned) trials, shared by
  every worker. A worker asks for a trial only while the budget has room; if two ask at once, the
  trial numbered past the budget is closed at once as failed with `surplus=True`, and runs nothing.
- **Sampler.** TPE, with the seed of the space plus the trial's number, so that workers never draw
  the same values and one worker's sweep is reproducible.
- **Pruning.** The median or Hyperband pruner sees the validation macro-F1 each epoch through the
  training loop's events; a backend without epochs (TF-IDF) is never pruned.
- **MLflow.** One parent run per study. Workers that start together may each create one; they all
  then keep the earliest and delete the others, so every trial lands under the one parent. Each
  trial is a nested run holding its values as params, its per-epoch metrics and its state; the best
  trial is tagged on the parent, with the study's plots as artifacts.
- **Kill and continue.** A trial whose worker died is marked failed (at once for a worker on this
  machine whose process is gone, after Optuna's heartbeat grace period for one elsewhere), and its
  MLflow run with it; completed trials are kept and the budget is refilled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainer.infra.atomic import atomic_file
from trainer.config import (
    CategoricalParam,
    ExperimentConfig,
    FloatParam,
    IntParam,
    SweepSpace,
    dump_yaml,
    load_config,
    portable,
    project_root,
    read_yaml,
    validate_config,
)
from trainer.errors import ConfigError

log = logging.getLogger(__name__)

# (x label, y label, title) of the sweep's plots, in place of Optuna's generic ones.
AXIS_NAMES = {
    "optimization_history": ("trial", "validation macro-F1", "Each trial's score and the best so far"),
    "intermediate_values": ("epoch", "validation macro-F1", "Each trial's score per epoch (pruned trials stop early)"),
}

BEST_CONFIG = "best.yaml"
SWEEPS_DIR = "sweeps"
HEARTBEAT_S = 30
POLL_S = 5  # how often a worker whose places are all taken looks again
GRACE_S = 120
# Keys a sweep sets itself, per trial: never part of a space.
_RESERVED = ("run_name", "output_dir", "tracking")


def _probe_values(param: FloatParam | IntParam | CategoricalParam) -> list[Any]:
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    return [param.low, param.high]


def _override(key: str, value: Any) -> str:
    return f"{key}={json.dumps(value)}"  # JSON is YAML: `--set` parses it back to the same value


def load_space(path: Path, config_path: Path | None, overrides: list[str] | None = None
               ) -> tuple[SweepSpace, ExperimentConfig, Path]:
    """The validated space, base config and its path (`--config`, else the space's `config:`). Every
    key must be one that `--set` accepts, with each bound or choice a valid value, and one that the
    backend reads."""
    space = validate_config(SweepSpace, read_yaml(path), str(path), set(), project_root(path))
    if config_path is None:
        if space.config is None:
            raise ConfigError(f"--config: expected a base experiment config, found none given and no config: key in "
                              f"{path}; pass --config configs/<experiment>.yaml")
        config_path = space.config
    base = load_config(config_path, overrides)
    for key, param in space.params.items():
        where = f"{path}: params.{key}"
        if key.split(".")[0] in _RESERVED:
            raise ConfigError(f"{where}: expected a model, training or data key, found one the sweep sets itself "
                              "for each trial; drop it from the space")
        for value in _probe_values(param):
            try:
                load_config(config_path, [*(overrides or []), _override(key, value)])
            except ConfigError as exc:
                message = str(exc).split(": ", 1)[1] if str(exc).startswith("--set ") else str(exc)
                raise ConfigError(f"{where}: {message}") from None
        reads = type(base.model).training_keys
        if key.startswith("training.") and reads is not None and key.split(".")[1] not in reads:
            shown = ", ".join(f"training.{k}" for k in sorted(reads)) or "no training.* key"
            raise ConfigError(f"{where}: expected a key that the {base.model.backend} backend reads ({shown}), "
                              "found one it ignores; drop it from the space, or sweep its model.* keys")
    return space, base, config_path


def default_storage(base: ExperimentConfig, space: SweepSpace) -> str:
    folder = sweep_dir(base, space)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


def sweep_dir(base: ExperimentConfig, space: SweepSpace) -> Path:
    return base.output_dir / SWEEPS_DIR / space.study


@dataclass
class SweepResult:
    study: str
    storage: str
    parent_run_id: str | None
    finished: int
    best_value: float | None
    best_params: dict[str, Any]
    best_config: Path | None
    ran_here: int


def _storage(url: str) -> Any:
    import optuna
    import sqlalchemy.exc

    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise ConfigError(f"--storage: expected a database URL Optuna can open (sqlite:///FILE.db, "
                          f"postgresql://USER@HOST:PORT/DB), found {url!r} ({type(exc).__name__}: {reason}); "
                          "check the URL and that the server is up") from None


@contextmanager
def _setup_lock(folder: Path) -> Iterator[None]:
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".setup.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive_here(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's worker: Optuna's heartbeat decides
    if pid == str(os.getpid()):
        return False  # this process runs no trial yet: one under its id is an earlier process's (a reused id)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def _fail_dead_trials(study: Any) -> int:
    """Mark failed the running trials whose worker died, and end their MLflow runs as failed."""
    import mlflow
    import optuna
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(study)  # heartbeats: workers on any machine
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker and not _alive_here(worker):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            failed += 1
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            client = mlflow.MlflowClient()
            if client.get_run(run_id).info.status == "RUNNING":
                client.set_tag(run_id, "trial_state", "failed")
                client.set_terminated(run_id, "FAILED")
    return failed


def _parent_run(base: ExperimentConfig, space: SweepSpace, space_path: Path, study: Any) -> str:
    """The study's one parent run: found by the study's own id (a study made afresh under the same name
    gets a new parent), or created; of several created at once, the earliest."""
    import uuid

    import mlflow

    client = mlflow.MlflowClient()
    experiment = mlflow.set_experiment(base.tracking.experiment)
    if "study_uid" not in study.user_attrs:
        study.set_user_attr("study_uid", uuid.uuid4().hex)
    uid = study.user_attrs["study_uid"]
    query = f"tags.`trainer.kind` = 'sweep' and tags.`trainer.study_uid` = '{uid}'"

    def existing() -> list[Any]:
        runs = client.search_runs([experiment.experiment_id], query, max_results=50)
        return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))

    found = existing()
    if found:
        return found[0].info.run_id
    from mlflow.entities import Param
    from mlflow.tracking.context.registry import resolve_tags

    # the source (entry point, git commit, user) as MLflow's own start_run fills it for the trial runs
    tags = resolve_tags({"trainer.kind": "sweep", "trainer.study": space.study, "trainer.study_uid": uid,
                         "trainer.backend": base.model.backend})
    mine = client.create_run(experiment.experiment_id, run_name=f"sweep-{space.study}", tags=tags)
    client.log_batch(mine.info.run_id, params=[Param(k, v) for k, v in _parent_params(base, space).items()])
    client.log_text(mine.info.run_id, yaml.safe_dump(space.model_dump(mode="json"), sort_keys=False),
                    f"sweep/{space_path.name}")
    client.log_text(mine.info.run_id, dump_yaml(base), "sweep/base_config.yaml")
    winner = existing()[0].info.run_id
    if winner != mine.info.run_id:
        client.delete_run(mine.info.run_id)  # another worker's parent came first
    return winner


def _parent_params(base: ExperimentConfig, space: SweepSpace) -> dict[str, str]:
    """What the parent run shows as its parameters: the study's settings, each searched key's range
    (`search.<key>`) and the base config's values (as the trials' own runs log them); a value too long for
    a param is left to sweep/base_config.yaml.

    The searched keys' base values are left out: each trial draws its own."""
    from trainer.outputs.tracking import MAX_PARAM_CHARS, flatten

    params = {f"sweep.{k}": v for k, v in space.model_dump(mode="json", exclude={"params", "config"}).items()}
    params |= {f"search.{key}": json.dumps(param.model_dump(mode="json", exclude_none=True))
               for key, param in space.params.items()}
    params |= {k: v for k, v in flatten(portable(base, base.data.project)).items() if k not in space.params}
    return {k: str(v) for k, v in params.items() if len(str(v)) <= MAX_PARAM_CHARS}


def _suggest(trial: Any, key: str, param: FloatParam | IntParam | CategoricalParam) -> Any:
    if isinstance(param, FloatParam):
        return trial.suggest_float(key, param.low, param.high, log=param.log)
    if isinstance(param, IntParam):
        return trial.suggest_int(key, param.low, param.high, step=param.step, log=param.log)
    return trial.suggest_categorical(key, param.choices)


def _pruner(space: SweepSpace) -> Any:
    import optuna

    if space.pruner == "median":
        # not before epoch 2: the first epoch's score mostly measures the warmup (0.44 to 0.81 in the
        # MiniLM sweep of docs/results.md, whose best trial started at 0.79)
        return optuna.pruners.MedianPruner(n_startup_trials=space.startup_trials, n_warmup_steps=2)
    if space.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()


def _sampler(space: SweepSpace, number: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=space.seed + number, n_startup_trials=space.startup_trials)


def _run_trial(trial: Any, config_path: Path, overrides: list[str], space: SweepSpace, parent: str,
               base: ExperimentConfig) -> float:
    """Train one trial's config and return its validation macro-F1 (raises TrialPruned to prune)."""
    import optuna

    from trainer.data.build import build_dataset
    from trainer.metrics import flat_metrics
    from trainer.models.loop import EpochDone
    from trainer.outputs.tracking import Tracker
    from trainer.workflows.recipe import prepare_run

    values = {key: _suggest(trial, key, param) for key, param in space.params.items()}
    run_name = f"{space.study}-trial-{trial.number:03d}"
    extra = [_override("run_name", run_name)]
    data_values = {k: v for k, v in values.items() if k.startswith("data.")}
    if data_values:  # trials with other data settings build their own dataset folder, never each other's
        digest = hashlib.sha256(json.dumps(data_values, sort_keys=True).encode()).hexdigest()[:10]
        extra.append(_override("data.name", f"{base.data.name}-sweep-{digest}"))
    config = load_config(config_path, [*overrides, *(_override(k, v) for k, v in values.items()), *extra])
    with _setup_lock(sweep_dir(config, space)):  # one worker builds a dataset; the others then reuse it
        built = build_dataset(config.data, progress=False)
    run = prepare_run(config, built)
    tags = {"trainer.kind": "sweep-trial", "trainer.study": space.study, "trial_number": str(trial.number),
            "trainer.backend": config.model.backend}

    def prune(event: EpochDone) -> None:
        score = event.metrics.get("val_macro_f1")
        if score is None:
            return
        trial.report(score, event.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {event.epoch}: validation macro-F1 {score:.4f}")

    pruned: optuna.TrialPruned | None = None
    with Tracker(config.tracking, run_name, tags, parent_run_id=parent) as tracker:
        trial.set_user_attr("mlflow_run_id", tracker.run_id)
        tracker.log_params({f"trial.{k}": v for k, v in values.items()})
        try:
            run.fit(tracker, on_epoch=prune)
        except optuna.TrialPruned as exc:  # a finished run (not a failed one) whose state says pruned
            tracker.set_tags({"trial_state": "pruned"})
            pruned = exc
        else:
            _, metrics = run.score("validation")
            tracker.log_metrics(flat_metrics(metrics, "best_val"))
            tracker.set_tags({"trial_state": "complete"})
    if pruned is not None:
        raise pruned
    return float(metrics["macro_f1"])


class _Surplus(Exception):
    """A trial numbered past the budget: closed as failed at once, nothing run."""


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def sweep(config_path: Path | None, space_path: Path, trials: int, overrides: list[str] | None = None,
          storage: str | None = None, keep: str | None = None, progress: bool = True) -> SweepResult:
    """Run trials of the study until it has `trials` finished ones (shared with any other worker)."""
    import mlflow
    import optuna
    from optuna.trial import TrialState

    from trainer.infra.progress import bar as progress_bar
    from trainer.outputs.tracking import tracking_uri

    overrides = list(overrides or [])
    space, base, config_path = load_space(space_path, config_path, overrides)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # trial lines: the bar and MLflow
    # heartbeats and fail_stale_trials are "experimental" in Optuna 5; they are what its distributed mode uses
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage or default_storage(base, space)
    # Workers on one machine set up one at a time: a new SQLite file (Optuna's or MLflow's) created by
    # two processes at once fails its schema migration. Workers on other machines meet in the database.
    with _setup_lock(sweep_dir(base, space)):
        rdb = _storage(url)
        study = optuna.create_study(storage=rdb, study_name=space.study, direction="maximize",
                                    pruner=_pruner(space), load_if_exists=True)
        signature = {"space": space.model_dump(mode="json"), "base": dump_yaml(base)}
        if "signature" in study.user_attrs and study.user_attrs["signature"] != signature:
            raise ConfigError(f"--space/--config: expected the space and base config that study '{space.study}' "
                              f"in {url} was started with, found others; use another study name or storage")
        study.set_user_attr("signature", signature)
        mlflow.set_tracking_uri(tracking_uri(base.tracking))
        parent = _parent_run(base, space, space_path, study)
        study.set_user_attr("mlflow_parent_run_id", parent)
        interrupted = _fail_dead_trials(study)
    if interrupted:
        log.info("%d interrupted trial(s) marked failed", interrupted)

    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)

    surplus = []

    def objective(trial: Any) -> float:
        trial.set_user_attr("worker", _worker_id())
        live = sorted(t.number for t in study.get_trials(deepcopy=False, states=counted))
        if live.index(trial.number) >= trials:  # another worker took the last place at the same time
            trial.set_user_attr("surplus", True)
            surplus.append(trial.number)
            raise _Surplus(f"trial {trial.number} is past the budget of {trials}")
        study.sampler = _sampler(space, trial.number)  # the trial's suggest_* draw from this seed
        return _run_trial(trial, config_path, overrides, space, parent, base)

    ran = 0
    bar = progress_bar(total=trials, initial=min(len(_finished(study)), trials), desc=f"sweep {space.study}",
               unit="trial", disable=not progress)
    # One trial per optimize call: Optuna then runs its heartbeat for the trial (so that a worker that
    # dies elsewhere is noticed) and tells the result; the loop re-reads the shared budget each time.
    while len(_finished(study)) < trials:
        if len(study.get_trials(deepcopy=False, states=counted)) >= trials:
            # Other workers hold the last places. Wait for them; if one died, its trial is failed (at once on
            # this machine, after Optuna's heartbeat grace period elsewhere) and its place is free again.
            time.sleep(POLL_S)
            _fail_dead_trials(study)
            continue
        surplus.clear()
        study.optimize(objective, n_trials=1, catch=(_Surplus,), gc_after_trial=True)
        if not surplus:
            ran += 1
        bar.update(min(len(_finished(study)), trials) - bar.n)  # other workers' trials count too
    bar.close()
    return _finish(study, base, space, config_path, overrides, parent, url, keep, ran, trials)


def _finish(study: Any, base: ExperimentConfig, space: SweepSpace, config_path: Path, overrides: list[str],
            parent: str, url: str, keep: str | None, ran: int, trials: int) -> SweepResult:
    """Best trial tag, plots and best.yaml: each worker writes them when it stops, from the whole study."""
    import mlflow
    from optuna.trial import TrialState

    client = mlflow.MlflowClient()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    folder = sweep_dir(base, space)
    folder.mkdir(parents=True, exist_ok=True)
    best_config = None
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    if best is not None:
        config = load_config(config_path, [*overrides, *(_override(k, v) for k, v in best.params.items()),
                                           _override("run_name", f"{space.study}-best")])
        best_config = folder / BEST_CONFIG
        text = (f"# The best trial ({best.number}) of sweep {space.study}: validation macro-F1 {best.value:.4f}.\n"
                f"# trainer train --config {best_config}\n" + dump_yaml(config))
        atomic_file(best_config, lambda tmp: tmp.write_text(text, encoding="utf-8"))  # workers that stop together
        client.set_tag(parent, "best_trial", str(best.number))
        client.set_tag(parent, "best_run_id", str(best.user_attrs.get("mlflow_run_id")))
        client.log_metric(parent, "best_val_macro_f1", float(best.value))
        client.log_artifact(parent, str(best_config), "sweep")
        for name, path in _plots(study, folder).items():
            client.log_artifact(parent, str(path), "plots")
    counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for key, value in counts.items():
        client.log_metric(parent, f"trials_{key}", value)
    if len(_finished(study)) >= trials and client.get_run(parent).info.status == "RUNNING":
        client.set_terminated(parent, "FINISHED")  # the budget is spent: the study is done
    if keep == "best" and best_config is not None:  # the worker asked to keep it trains it, once more
        from trainer.workflows.train import train

        train(load_config(best_config), overwrite=True)
    return SweepResult(space.study, url, parent, len(_finished(study)), best.value if best else None,
                       dict(best.params) if best else {}, best_config, ran)


def _plots(study: Any, folder: Path) -> dict[str, Path]:
    """Optuna's matplotlib plots of the study, as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots


    out: dict[str, Path] = {}
    kinds = {"optimization_history": plots.plot_optimization_history,
             "param_importances": plots.plot_param_importances}
    if any(t.intermediate_values for t in study.trials):  # backends with epochs
        kinds["intermediate_values"] = plots.plot_intermediate_values
    for name, plot in kinds.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "plot_* is experimental": the API is Optuna's own
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as exc:  # e.g. importances need two complete trials
                log.info("no %s plot: %s", name, exc)
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        if name in AXIS_NAMES:  # Optuna's generic names say nothing of what was measured
            axes.set_xlabel(AXIS_NAMES[name][0])
            axes.set_ylabel(AXIS_NAMES[name][1])
            axes.set_title(f"{AXIS_NAMES[name][2]}: {study.study_name}")
        figure.set_size_inches(8, 5)
        figure.tight_layout()
        for suffix in ("png", "svg"):
            path = folder / f"{name}.{suffix}"
            atomic_file(path, lambda tmp, suffix=suffix: figure.savefig(tmp, dpi=120, format=suffix))
            out[f"{name}.{suffix}"] = path
        plt.close(figure)
    return out
