"""The logged model's code: the pyfunc wrapper, and MLflow's "model from code" entry point.

MLflow runs this file to build the wrapper when it loads a logged model, so loading never unpickles
anything. Besides `tracking.py`, the only module that imports mlflow.
"""

from __future__ import annotations

import os
from typing import Any

import mlflow

from trainer.tracking import import_pyfunc

# The most a served model takes in one request; a larger one gets HTTP 400 before any work, so one
# request cannot hold a worker past the scoring server's timeout. Set where the model is served.
MAX_INPUTS_ENV = "TRAINER_SERVE_MAX_INPUTS"
MAX_CHARS_ENV = "TRAINER_SERVE_MAX_CHARS"
DEFAULT_MAX_INPUTS = 1_000
DEFAULT_MAX_CHARS = 1_000_000


def _limit(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        value = 0
    if value < 1:
        raise mlflow.exceptions.MlflowException(f"{name}: expected a positive integer, found {raw!r}")
    return value


def _bad_request(message: str) -> Exception:
    """An error the scoring server answers with HTTP 400 and this message (no traceback)."""
    return mlflow.exceptions.MlflowException.invalid_parameter_value(message)


def _serving() -> bool:
    """Whether this process is MLflow's scoring server (`mlflow models serve`), which sets this flag;
    batch callers (a Spark UDF, `pyfunc.load_model(...).predict`) choose their own batch sizes."""
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT

    return bool(_MLFLOW_IS_IN_SERVING_ENVIRONMENT.get())


def check_request(texts: list[Any]) -> None:
    """Refuse a request the model should not compute: an input that is not a sentence (not a string,
    empty, only whitespace), or, in the scoring server, too many inputs or characters. Raises the
    error MLflow answers with HTTP 400 and this reason."""
    from trainer.errors import DataError
    from trainer.predict import check_text

    serving = _serving()
    max_inputs = _limit(MAX_INPUTS_ENV, DEFAULT_MAX_INPUTS) if serving else len(texts)
    max_chars = _limit(MAX_CHARS_ENV, DEFAULT_MAX_CHARS) if serving else None
    if len(texts) > max_inputs:
        raise _bad_request(f"expected at most {max_inputs:,} inputs in one request, found {len(texts):,}; "
                           f"send them in several requests (the server's limit is {MAX_INPUTS_ENV})")
    total = 0
    for position, text in enumerate(texts):
        try:
            check_text(text, f"input {position}")
        except DataError as exc:
            raise _bad_request(str(exc)) from None
        total += len(text)
        if max_chars is not None and total > max_chars:
            raise _bad_request(f"expected at most {max_chars:,} characters in one request, found more by input "
                               f"{position}; send fewer or shorter texts (the server's limit is {MAX_CHARS_ENV})")


class PyfuncModel(import_pyfunc().PythonModel):
    """MLflow pyfunc wrapper: `predict(list of sentences)` -> DataFrame of label, probabilities and
    `truncated` (longer than the model reads).

    The `list[str]` hint is MLflow's schema: it checks every request against it (a JSON request
    whose inputs are not all strings gets HTTP 400), and turns a DataFrame's first string column (a
    `text` column, a Spark UDF's column) into the list before `predict`, which then refuses, with
    HTTP 400 and the reason, empty or whitespace-only texts and requests over the size limits
    (`TRAINER_SERVE_MAX_INPUTS`, `TRAINER_SERVE_MAX_CHARS`), before computing anything.
    """

    def load_context(self, context: Any) -> None:
        from trainer.predict import load_classifier

        self.classifier = load_classifier(context.artifacts["model_dir"])

    @staticmethod
    def to_frame(predictions: list[Any]) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [{"label": p.label, **{f"p_{k}": v for k, v in p.probabilities.items()}, "truncated": p.truncated}
             for p in predictions]
        )

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None):  # noqa: ANN201
        # no return hint: MLflow then takes the output schema from the input example's output
        texts = list(model_input)
        check_request(texts)
        return self.to_frame(self.classifier.predict(texts))


mlflow.models.set_model(PyfuncModel())
