"""The logged model's code: the pyfunc wrapper, and MLflow's "model from code" entry point.

MLflow runs this file to build the wrapper when it loads a logged model, so loading never unpickles
anything. It imports mlflow, as only `tracking.py` and `workflows/sweep.py` do besides.
"""

from __future__ import annotations

import os
from typing import Any

import mlflow

from trainer.outputs.tracking import import_pyfunc

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
    from trainer.workflows.predict import check_text

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


# The one column a DataFrame input (a CSV or Parquet request, a Spark UDF's struct) holds the texts in.
TEXT_COLUMN = "text"


def texts_of(model_input: Any) -> list[Any]:
    """The texts of a request: a list (JSON `inputs`), or a DataFrame's `text` column. A frame
    without one is an HTTP 400 error, not its first string column labeled instead (an id, a title)."""
    import numpy as np
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if TEXT_COLUMN not in model_input.columns:
            raise _bad_request(f"expected a '{TEXT_COLUMN}' column, found columns "
                               f"{[str(c) for c in model_input.columns]}; name the column of sentences '{TEXT_COLUMN}'")
        model_input = model_input[TEXT_COLUMN]
    if isinstance(model_input, (pd.Series, np.ndarray)):
        return [None if isinstance(v, float) and v != v else v for v in model_input.tolist()]  # NaN: a missing cell
    if isinstance(model_input, (list, tuple)):
        return list(model_input)
    raise _bad_request(f"expected a list of sentences, found {type(model_input).__name__}; send "
                       '{"inputs": ["a sentence", ...]}')


class PyfuncModel(import_pyfunc().PythonModel):
    """MLflow pyfunc wrapper: `predict(list of sentences)` -> DataFrame of label, probabilities and
    `truncated` (longer than the model reads).

    The `list[str]` hint is the logged model's signature (a JSON request must be `{"inputs": [...]}`).
    `predict` checks each request itself (`texts_of`, `check_request`) and refuses with HTTP 400 and
    the reason, before computing anything: inputs that are not strings, empty or whitespace-only
    texts, a DataFrame (CSV, Parquet) without a `text` column, and requests over the size limits
    (`TRAINER_SERVE_MAX_INPUTS`, `TRAINER_SERVE_MAX_CHARS`).
    """

    # MLflow's own check of the hint would first turn a DataFrame into its first column, whatever the
    # column is; predict does the checking instead (MLflow skips it for its own models the same way).
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        from mlflow.models.signature import _TypeHints

        from trainer.workflows.predict import load_classifier

        self.classifier = load_classifier(context.artifacts["model_dir"])
        # The hints MLflow's pyfunc wrapper goes by once the model is loaded (the signature is written
        # before): none, so a DataFrame reaches predict whole instead of as its first string column.
        self._predict_type_hints = _TypeHints()

    @staticmethod
    def to_frame(predictions: list[Any]) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [{"label": p.label, **{f"p_{k}": v for k, v in p.probabilities.items()}, "truncated": p.truncated}
             for p in predictions]
        )

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None):  # noqa: ANN201
        # no return hint: MLflow then takes the output schema from the input example's output
        texts = texts_of(model_input)
        check_request(texts)
        return self.to_frame(self.classifier.predict(texts))


# MLflow's mark of a predict that validates its own input, as it sets on its own models' predict (and
# so does not advise, when the model is logged, decorating it to have MLflow validate it).
PyfuncModel.predict._is_pyfunc = True  # type: ignore[attr-defined]

mlflow.models.set_model(PyfuncModel())
