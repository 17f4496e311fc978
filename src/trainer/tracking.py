"""MLflow tracking: the only module that imports mlflow.

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trainer.config import DEFAULT_TRACKING_DB, TrackingConfig
from trainer.errors import ModelLoadError
from trainer.model_folder import MODEL_META

log = logging.getLogger(__name__)

# MLflow rejects longer param values; longer ones go to an artifact instead of being cut.
_MAX_PARAM_CHARS = 500
# The logged model's name in runs logged before it was named after the run.
MODEL_ARTIFACT = "model"
# The experiment tag MLflow's UI reads to open an experiment in its model-training view (runs, metrics,
# models) instead of the GenAI view (traces, agents) it falls back to for untagged experiments.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


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

    def child(self, run_name: str, tags: dict[str, str] | None = None) -> Tracker:
        """A nested run under this one (e.g. one per cross-validation fold)."""
        return Tracker(self.config, run_name, tags, nested=True, error=self.error)

    def _guard(self, what: str, action: Callable[[], Any]) -> Any:
        if self.error is not None:
            return None
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - any tracking failure is reported, training goes on
            self.error = f"{what} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("MLflow tracking at %s: %s; the run goes on without tracking", self.uri, self.error)
            return None

    def __enter__(self) -> Tracker:
        import mlflow

        def start() -> None:
            if not self.nested:
                _check_reachable(self.uri)
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

        self._guard("starting the run", start)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import mlflow

        if self._active:
            status = "FINISHED" if exc_type is None else "FAILED"
            try:
                mlflow.end_run(status=status)
            except Exception as end_exc:  # noqa: BLE001
                log.warning("MLflow tracking: ending the run failed: %s", end_exc)
            self._active = False

    # ------------------------------------------------------------ logging

    def log_config(self, plain_config: dict[str, Any]) -> None:
        """Params from the flattened config; values too long for a param go to config.json in full."""
        import mlflow

        def do() -> None:
            flat = flatten(plain_config)
            params = {k: v for k, v in flat.items() if len(str(v)) <= _MAX_PARAM_CHARS}
            long = sorted(set(flat) - set(params))
            if long:
                params["long_params_in_artifact"] = ",".join(long)[:_MAX_PARAM_CHARS]
            mlflow.log_params(params)
            mlflow.log_dict(plain_config, "config/resolved_config.json")

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
            earlier = mlflow.search_runs(filter_string=query, output_format="list")
            client = mlflow.MlflowClient()
            for run in earlier:
                if run.info.run_id != self.run_id:
                    client.delete_run(run.info.run_id)
            return sum(run.info.run_id != self.run_id for run in earlier)

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


# A tracking server that does not answer within this many seconds is reported as unreachable,
# instead of MLflow's own retries holding training up for minutes.
_PROBE_TIMEOUT_S = 5


def _check_reachable(uri: str) -> None:
    """For http(s) tracking URIs, one quick request to the server's health endpoint."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=_PROBE_TIMEOUT_S).raise_for_status()
    except requests.RequestException as exc:
        raise ConnectionError(f"tracking server {uri} is unreachable ({type(exc).__name__})") from None


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("torch", "transformers", "scikit-learn", "skops", "syntok", "pydantic", "pyyaml", "mlflow"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


@contextmanager
def downloaded_model(uri: str) -> Iterator[Path]:
    """Download a `runs:/` or `models:/` pyfunc model and yield the trainer model folder inside it."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="trainer-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except (mlflow.exceptions.MlflowException, OSError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ModelLoadError(
                f"{uri}: expected a logged model at this MLflow URI (tracking URI {mlflow.get_tracking_uri()}), found "
                f"none ({first}); check the name, alias or run id (`runs:/<run id>/model`, `models:/NAME@alias`) and "
                "MLFLOW_TRACKING_URI"
            ) from None
        candidates = [p.parent for p in local.rglob(MODEL_META)]
        if not candidates:
            raise ModelLoadError(f"{uri}: expected a model logged by trainer, found no trainer_model.json in it")
        yield candidates[0]
