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
MODEL_ARTIFACT = "model"


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
                mlflow.set_experiment(self.config.experiment)
            if self.resume_run_id:  # --resume: continue the interrupted run, not a new one
                run = mlflow.start_run(run_id=self.resume_run_id)
            else:
                run = mlflow.start_run(run_name=self.run_name, tags=self.tags, nested=self.nested,
                                       parent_run_id=self.parent_run_id)
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

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        import mlflow

        self._guard("logging metrics", lambda: mlflow.log_metrics(metrics, step=step))

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        import mlflow

        self._guard(f"logging {artifact_file}", lambda: mlflow.log_dict(data, artifact_file))

    def log_text(self, text: str, artifact_file: str) -> None:
        import mlflow

        self._guard(f"logging {artifact_file}", lambda: mlflow.log_text(text, artifact_file))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        import mlflow

        self._guard(f"logging {path.name}", lambda: mlflow.log_artifact(str(path), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        self._guard("setting tags", lambda: mlflow.set_tags(tags))

    def log_dataset(self, frame: Any, name: str, source: str, fingerprint: str, context: str) -> None:
        """Log a split as an MLflow dataset input whose digest is the dataset fingerprint."""
        import mlflow

        def do() -> None:
            with warnings.catch_warnings():
                # "source can be interpreted in multiple ways", "schema contains integer column(s)"
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(
                    frame, source=source, targets="label", name=name, digest=fingerprint[:36]
                )
                mlflow.log_input(dataset, context=context, tags={"fingerprint": fingerprint})

        self._guard(f"logging dataset {name}", do)

    def log_model(
        self, model_dir: Path, input_example: list[str], register_as: str | None = None, alias: str | None = None
    ) -> str | None:
        """Log the model folder as a pyfunc model under `model`; returns its runs:/ URI.

        With `register_as`, the model also becomes a new version of that registered model, and
        `alias` (e.g. "champion") points at the new version: `models:/NAME@champion`.
        """
        import mlflow

        pyfunc = import_pyfunc()

        def do() -> str:
            # The signature comes from PyfuncModel.predict's type hint (MLflow uses that one over any
            # other); the input example is checked against it when the model is logged.
            pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(Path(__file__).with_name("mlflow_model.py")),
                artifacts={"model_dir": str(model_dir)},
                input_example=input_example,
                pip_requirements=_requirements(),
                registered_model_name=register_as,
            )
            if register_as and alias:
                client = mlflow.MlflowClient()
                versions = client.search_model_versions(f"name = '{register_as}' and run_id = '{self.run_id}'")
                newest = max(versions, key=lambda v: int(v.version))
                client.set_registered_model_alias(register_as, alias, newest.version)
            return f"runs:/{self.run_id}/{MODEL_ARTIFACT}"

        return self._guard("logging the model", do)


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


def _no_model_at(uri: str, exc: Exception) -> ModelLoadError:
    import mlflow

    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return ModelLoadError(
        f"{uri}: expected a logged model at this MLflow URI (tracking URI {mlflow.get_tracking_uri()}), found "
        f"none ({first}); check the name, alias or run id (`runs:/<run id>/model`, `models:/NAME@alias`) and "
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

    with tempfile.TemporaryDirectory(prefix="trainer-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except (mlflow.exceptions.MlflowException, OSError) as exc:
            raise _no_model_at(uri, exc) from None
        candidates = [p.parent for p in local.rglob(MODEL_META)]
        if not candidates:
            raise ModelLoadError(f"{uri}: expected a model logged by trainer, found no trainer_model.json in it")
        yield candidates[0]
