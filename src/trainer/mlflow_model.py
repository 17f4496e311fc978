"""The logged model's code: the pyfunc wrapper, and MLflow's "model from code" entry point.

MLflow runs this file to build the wrapper when it loads a logged model, so loading never unpickles
anything. Besides `tracking.py`, the only module that imports mlflow.
"""

from __future__ import annotations

from typing import Any

import mlflow

from trainer.tracking import import_pyfunc


class PyfuncModel(import_pyfunc().PythonModel):
    """MLflow pyfunc wrapper: `predict(list of sentences)` -> DataFrame of label, probabilities and
    `truncated` (longer than the model reads).

    The `list[str]` hint is MLflow's schema: it checks every request against it, and turns a
    one-column DataFrame (a `text` column, a Spark UDF's column) into the list before `predict`.
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
        return self.to_frame(self.classifier.predict(list(model_input)))


mlflow.models.set_model(PyfuncModel())
