"""MLflow tracking: runs and what they log, model URIs, and the MLflow calls of `tag-spark`.

Besides this module, mlflow is imported only by `outputs/mlflow_model.py` (the logged pyfunc model is
an MLflow class) and `workflows/sweep.py` (a sweep's parent run, and its trials' runs ended or tagged
through MLflow's client).

Every `train` and `evaluate` is one run. A tracking failure is reported (log warning and
`Tracker.error`) and ends tracking for that run; it never stops training or loses the model,
which is saved before anything is logged.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from trainer.config import DEFAULT_TRACKING_DB, TrackingConfig
from trainer.errors import ModelLoadError
from trainer.infra.secrets import mask_values
from trainer.outputs.model_folder import FREEZE_FILE, MODEL_META, PROVENANCE_FILE
from trainer.outputs.report import REPORT_FILES, TABLES_DIR
from trainer.outputs.tracking_store import check_reachable

log = logging.getLogger(__name__)

# MLflow rejects longer param values; longer ones go to an artifact instead of being cut.
MAX_PARAM_CHARS = 500
# The logged model's name in runs logged before it was named after the run.
MODEL_ARTIFACT = "model"
# The experiment tag MLflow's UI reads to open an experiment in its model-training view (runs, metrics,
# models) instead of the GenAI view (traces, agents) it falls back to for untagged experiments.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# Artifact folders of a run: the provenance record and pip freeze, and the model card.
PROVENANCE_ARTIFACTS = "provenance"
CARD_ARTIFACTS = "model_card"


def tracking_uri(config: TrackingConfig) -> str:
    """Config `tracking.uri`, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the current folder."""
    if config.uri:
        return config.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path.cwd() / DEFAULT_TRACKING_DB}"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists are kept whole (as JSON)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else value
    return flat


class Tracker:
    """One MLflow run. Use as a context manager; every method is a no-op once tracking failed."""

    def __init__(
        self,
        config: TrackingConfig,
        run_name: str,
        tags: dict[str, str] | None = None,
        nested: bool = False,
        error: str | None = None,
        resume_run_id: str | None = None,
        parent_run_id: str | None = None,
    ):
        self.config = config
        self.parent_run_id = parent_run_id  # a parent run in another process (a sweep's study run)
        self.run_name = run_name
        self.tags = tags or {}
        self.nested = nested
        self.resume_run_id = resume_run_id
        self.run_id: str | None = None
        self.model_id: str | None = None  # the model this run logged, once it did
        self.uri = tracking_uri(config)
        self.error: str | None = error or (None if config.enabled else "tracking disabled in the config")
        self._active = False
        self._pid_file: Path | None = None

    def child(self, run_name: str, tags: dict[str, str] | None = None) -> Tracker:
        """A nested run under this one (e.g. one per cross-validation fold)."""
        return Tracker(self.config, run_name, tags, nested=True, error=self.error)

    def _guard(self, what: str, action: Callable[[], Any]) -> Any:
        if self.error is not None:
            return None
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - any tracking failure is reported, training goes on
            self.error = f"{what} failed: {_reason(exc)}"
            log.warning("MLflow tracking at %s: %s; the run goes on without tracking", self.uri, self.error)
            return None

    def __enter__(self) -> Tracker:
        import mlflow

        def start() -> None:
            if not self.nested:
                _bound_http_waits()
                check_reachable(self.uri)
                mlflow.set_tracking_uri(self.uri)
                experiment = mlflow.set_experiment(self.config.experiment)
                if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                    mlflow.set_experiment_tag(EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            if self.resume_run_id:  # --resume: continue the interrupted run, not a new one
                run = mlflow.start_run(run_id=self.resume_run_id)
            else:
                parent = self.parent_run_id if self.parent_run_id and _run_exists(self.parent_run_id) else None
                run = mlflow.start_run(run_name=self.run_name, tags=self.tags, nested=self.nested,
                                       parent_run_id=parent)
            self.run_id = run.info.run_id
            self._active = True
            self._pid_file = write_pid_file(self.uri, self.run_id)

        self._guard("starting the run", start)
        if self._active and not self.nested:
            close_stale_runs(self.uri)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import mlflow

        if self._active:
            self._active = False
            status = _status(exc_type, self.error)
            try:
                with _no_waiting() if self.error else nullcontext():  # the server failed once: no more retries
                    mlflow.end_run(status=status)
            except Exception as end_exc:  # noqa: BLE001
                log.warning("MLflow tracking: ending run %s failed (%s); the next tracked command ends it as %s",
                            self.run_id, _reason(end_exc), status)
                note_pid_file(self._pid_file, status)
                return
            if self._pid_file is not None:
                self._pid_file.unlink(missing_ok=True)

    # ------------------------------------------------------------ logging

    def log_config(self, plain_config: dict[str, Any]) -> None:
        """Params from the flattened config; values too long for a param go to config.json in full."""
        import mlflow

        masked = mask_values(plain_config)  # the tracking server is told no password, not even its own

        def do() -> None:
            flat = flatten(masked)
            params = {k: v for k, v in flat.items() if len(str(v)) <= MAX_PARAM_CHARS}
            long = sorted(set(flat) - set(params))
            if long:
                params["long_params_in_artifact"] = ",".join(long)[:MAX_PARAM_CHARS]
            mlflow.log_params(params)
            mlflow.log_dict(masked, "config/resolved_config.json")

        self._guard("logging the config", do)

    def log_params(self, params: dict[str, Any]) -> None:
        import mlflow

        self._guard("logging params", lambda: mlflow.log_params(params))

    def log_metrics(
        self, metrics: dict[str, float], step: int | None = None, model_id: str | None = None, dataset: Any = None
    ) -> None:
        """Metrics of the run; with `model_id` (and `dataset`) they are also the logged model's, on that data."""
        import mlflow

        self._guard("logging metrics", lambda: mlflow.log_metrics(metrics, step=step, model_id=model_id,
                                                                  dataset=dataset))

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        import mlflow

        self._guard(f"logging {artifact_file}", lambda: mlflow.log_dict(data, artifact_file))

    def log_text(self, text: str, artifact_file: str) -> None:
        import mlflow

        self._guard(f"logging {artifact_file}", lambda: mlflow.log_text(text, artifact_file))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        import mlflow

        def do() -> None:
            if path.is_dir():
                mlflow.log_artifacts(str(path), artifact_path)
            else:
                mlflow.log_artifact(str(path), artifact_path)

        self._guard(f"logging {path.name}", do)

    def log_provenance(self, record: dict[str, Any], freeze: str) -> None:
        """The provenance record and pip freeze under provenance/, as `provenance.write` writes them to a folder."""
        self.log_dict(record, f"{PROVENANCE_ARTIFACTS}/{PROVENANCE_FILE}")
        self.log_text(freeze, f"{PROVENANCE_ARTIFACTS}/{FREEZE_FILE}")

    def log_report(
        self, report_dir: Path, artifact_path: str, provenance: tuple[dict[str, Any], str] | None = None,
        card: Path | None = None,
    ) -> None:
        """A written evaluation report under `artifact_path` (its files, and its tables under tables/), then
        the (record, pip freeze) provenance and the model card when given: `train` logs its test report so,
        `evaluate` its own."""
        for name in REPORT_FILES:
            self.log_artifact(report_dir / name, artifact_path)
        self.log_artifact(report_dir / TABLES_DIR, f"{artifact_path}/{TABLES_DIR}")
        if provenance is not None:
            self.log_provenance(*provenance)
        if card is not None:
            self.log_artifact(card, CARD_ARTIFACTS)

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        self._guard("setting tags", lambda: mlflow.set_tags(tags))

    def log_dataset(
        self, frame: Any, name: str, source: str, fingerprint: str, context: str, model_id: str | None = None
    ) -> Any:
        """Log data as an MLflow dataset input whose digest is its fingerprint; returns the dataset.

        With `model_id`, the run's input also names that logged model (an evaluation of it)."""
        import mlflow
        from mlflow.entities import LoggedModelInput

        def do() -> Any:
            with warnings.catch_warnings():
                # "source can be interpreted in multiple ways", "schema contains integer column(s)"
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(
                    frame, source=source, targets="label", name=name, digest=fingerprint[:36]
                )
                mlflow.log_input(dataset, context=context, tags={"fingerprint": fingerprint},
                                 model=LoggedModelInput(model_id) if model_id else None)
            return dataset

        return self._guard(f"logging dataset {name}", do)

    def logged_model_id(self, run_id: str | None) -> str | None:
        """The id of the model that training run `run_id` logged (None if it logged none here)."""
        import mlflow

        def find() -> str | None:
            found = mlflow.search_logged_models(
                experiment_ids=[e.experiment_id for e in mlflow.search_experiments()],
                filter_string=f"source_run_id = '{run_id}'", output_format="list",
            )
            return found[0].model_id if found else None

        return self._guard("finding the logged model", find) if run_id else None

    def replace_earlier(self, tags: dict[str, str]) -> int:
        """Soft-delete this experiment's earlier runs with all of `tags` (MLflow keeps them under
        "deleted runs"); returns how many."""
        import mlflow

        def do() -> int:
            query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
            earlier = [run.info.run_id for run in mlflow.search_runs(filter_string=query, output_format="list")
                       if run.info.run_id != self.run_id]
            client = mlflow.MlflowClient()
            for run_id in earlier:
                client.delete_run(run_id)
            return len(earlier)

        return self._guard("replacing earlier evaluations", do) or 0

    def log_model(
        self, model_dir: Path, input_example: list[str], register_as: str | None = None, alias: str | None = None
    ) -> str | None:
        """Log the model folder as a pyfunc model named after the run; returns its runs:/ URI.

        With `register_as`, the model also becomes a new version of that registered model, and
        `alias` (e.g. "champion") points at the new version: `models:/NAME@champion`.
        """
        import mlflow

        pyfunc = import_pyfunc()

        def do() -> str:
            # The signature comes from PyfuncModel.predict's type hint (MLflow uses that one over any
            # other); the input example is checked against it when the model is logged.
            info = pyfunc.log_model(
                name=self.run_name,
                python_model=str(Path(__file__).with_name("mlflow_model.py")),
                artifacts={"model_dir": str(model_dir)},
                input_example=input_example,
                pip_requirements=_requirements(),
                registered_model_name=register_as,
            )
            self.model_id = info.model_id
            if register_as and alias:
                client = mlflow.MlflowClient()
                versions = client.search_model_versions(f"name = '{register_as}' and run_id = '{self.run_id}'")
                newest = max(versions, key=lambda v: int(v.version))
                client.set_registered_model_alias(register_as, alias, newest.version)
            return f"runs:/{self.run_id}/{self.run_name}"

        return self._guard("logging the model", do)


def _run_exists(run_id: str) -> bool:
    """Whether the current tracking store holds run `run_id` (a model trained elsewhere may name another)."""
    import mlflow

    try:
        mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


def import_pyfunc() -> Any:
    """`mlflow.pyfunc`, imported without the warning MLflow prints on importing it.

    Filter (cannot be fixed here): mlflow.pyfunc imports MLflow's own mlflow.types.responses, whose
    pydantic models warn "Any type hint is inferred as AnyType" once per process.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*Any type hint is inferred as AnyType", category=UserWarning)
        import mlflow.pyfunc
    return mlflow.pyfunc


def logged_model_run_id(uri: str) -> str | None:
    """The id of the run that logged the model at an MLflow URI (runs:/ or models:/ alike)."""
    import mlflow

    return mlflow.models.get_model_info(uri).run_id


def use_tracking_uri(uri: str) -> None:
    """Point MLflow at `uri`, in this process and, through $MLFLOW_TRACKING_URI, in those it starts."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri


def spark_udf(spark: Any, uri: str, result_type: str) -> Any:
    """The logged pyfunc model at `uri` as a Spark UDF, run in this environment (no rebuilt one)."""
    import mlflow

    return mlflow.pyfunc.spark_udf(spark, uri, env_manager="local", result_type=result_type)


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("torch", "transformers", "scikit-learn", "skops", "syntok", "pydantic", "pyyaml", "mlflow"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def _no_model_at(uri: str, exc: Exception) -> ModelLoadError:
    import mlflow

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ModelLoadError(
        f"{uri}: expected a logged model at this MLflow URI (tracking URI {mlflow.get_tracking_uri()}), found "
        f"none ({first}); check the name, alias or run id (`runs:/<run id>/<run name>`, `models:/NAME@alias`) and "
        "MLFLOW_TRACKING_URI"
    )


def check_model_uri(uri: str) -> None:
    """Refuse a `runs:/` or `models:/` URI that names no logged model, reading only its MLmodel file."""
    import mlflow

    try:
        mlflow.models.get_model_info(uri)
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise _no_model_at(uri, exc) from None


@contextmanager
def downloaded_model(uri: str) -> Iterator[Path]:
    """Download a `runs:/` or `models:/` pyfunc model and yield the trainer model folder inside it."""
    import mlflow

    _bound_http_waits()
    with tempfile.TemporaryDirectory(prefix="trainer-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except (mlflow.exceptions.MlflowException, OSError) as exc:
            raise _no_model_at(uri, exc) from None
        candidates = [p.parent for p in local.rglob(MODEL_META)]
        if not candidates:
            raise ModelLoadError(f"{uri}: expected a model logged by trainer, found no trainer_model.json in it")
        yield candidates[0]


# ---------------------------------------------------------------- runs that end

# MLflow retries a failing HTTP request 7 times over about 4 minutes. These bounds (MLflow's own
# settings; values set in the environment win) make a dead server cost at most about 20 s, once:
# the first failure ends tracking for the run, and the run is then ended without retries.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
_NO_WAITING = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
RUNS_DIR = "runs"  # under the cache root: one PID file per MLflow run in progress


def _bound_http_waits() -> None:
    for name, value in HTTP_LIMITS.items():
        os.environ.setdefault(name, value)
    # MLflow logs SQLAlchemy errors with their traceback before raising them; the raised error is
    # reported in one line (Tracker.error), so the log record would only repeat it, in 40 lines.
    logging.getLogger("mlflow.store.db.utils").addFilter(_drop_errors)


def _drop_errors(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


@contextmanager
def _no_waiting() -> Iterator[None]:
    before = {name: os.environ.get(name) for name in _NO_WAITING}
    os.environ.update(_NO_WAITING)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _status(exc_type: Any, tracking_error: str | None) -> str:
    """KILLED for a signal or Ctrl-C, FAILED for an error or a run whose tracking broke off, else FINISHED."""
    if exc_type is not None and issubclass(exc_type, SystemExit | KeyboardInterrupt):
        return "KILLED"
    return "FAILED" if exc_type is not None or tracking_error else "FINISHED"


def _reason(exc: BaseException) -> str:
    """The innermost cause of a tracking error, in one line
    (`OperationalError: attempt to write a readonly database`)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _runs_dir(uri: str) -> Path:
    from hashlib import sha256

    from trainer.models.encoders import cache_root

    return cache_root() / RUNS_DIR / sha256(uri.encode()).hexdigest()[:16]


def write_pid_file(uri: str, run_id: str) -> Path | None:
    """Record that this process has MLflow run `run_id` in progress (None if the cache is not writable)."""
    import socket

    from trainer.infra.locks import process_started

    path = _runs_dir(uri) / f"{run_id}.json"
    record = {"run_id": run_id, "pid": os.getpid(), "started": process_started(os.getpid()),
              "host": socket.gethostname(), "uri": uri, "status": None}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")
    except OSError as exc:
        log.warning("cannot record run %s in %s (%s): if this process is killed, the run stays RUNNING",
                    run_id, path.parent, exc.strerror)
        return None
    return path


def note_pid_file(path: Path | None, status: str) -> None:
    """The run could not be ended here: leave the status for the next command to set."""
    if path is not None and path.is_file():
        record = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**record, "status": status}), encoding="utf-8")


def close_stale_runs(uri: str) -> list[str]:
    """End the runs on `uri` that a process of this machine left RUNNING: KILLED where the process is
    gone (a SIGKILL, a lost machine), or the status it could not set. Returns their run ids."""
    import socket

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from trainer.infra.locks import alive

    closed = []
    for path in sorted(_runs_dir(uri).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record["host"] != socket.gethostname():
                continue
            if record["status"] is None and alive(record["pid"], record["started"]):
                continue  # still running
            client = MlflowClient(tracking_uri=uri)
            try:
                run = client.get_run(record["run_id"])
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                path.unlink(missing_ok=True)  # deleted from the store since
                continue
            status = record["status"] or "KILLED"
            if run.info.status == "RUNNING":
                client.set_terminated(record["run_id"], status)
                closed.append(record["run_id"])
                log.warning("MLflow run %s (%s) was left RUNNING by process %s, which is gone: marked %s",
                            record["run_id"], run.info.run_name, record["pid"], status)
            path.unlink(missing_ok=True)
        except Exception as exc:  # noqa: BLE001 - tidying up after others must not stop this run
            log.warning("MLflow tracking: could not end the stale run of %s (%s)", path.name, _reason(exc))
    return closed


# ---------------------------------------------------------------- summaries


def log_summary(summary: Any, report: Path, audit: Path | None, audited: Any) -> str | None:
    """One MLflow run for a `trainer summarize`: its settings, each group's primary share and interval as
    metrics, the report's files, and the audit (its file and its labeled sentences as the dataset input)."""
    import hashlib
    import re

    config = TrackingConfig()
    with Tracker(config, f"summary-{summary.by}", tags={"trainer.kind": "summary"}) as tracker:
        tracker.log_params({"by": summary.by, "model": summary.model, "primary_estimator": summary.primary,
                            "audit": str(audit) if audit else "none",
                            "audit_design": (summary.audit or {}).get("design", "none")})
        metrics = {}
        for row in summary.rows:
            name = re.sub(r"[^A-Za-z0-9_\-. /]", "_", f"{row['group']}/{row['label']}")
            for part in ("share", "low", "high"):
                metrics[f"{summary.primary}_{part}/{name}"] = float(row[f"{summary.primary}_{part}"])
            metrics[f"audited/{name}"] = float(row["audited"])
        tracker.log_metrics(metrics)
        tracker.log_artifact(report, "summary")
        if audit is not None and audited is not None:
            tracker.log_artifact(audit, "audit")
            frame = audited[["article_id", "text", "gold", "weight"]].rename(columns={"gold": "label"})
            fingerprint = hashlib.sha256(audit.read_bytes()).hexdigest()
            tracker.log_dataset(frame, f"audit:{audit.name}", str(audit.resolve()), fingerprint, "audit")
        if tracker.error:
            log.warning("the summary was written but not tracked: %s", tracker.error)
        return tracker.run_id if tracker.error is None else None
