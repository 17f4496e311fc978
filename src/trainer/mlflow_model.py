"""MLflow "model from code" entry point: MLflow runs this file to build the pyfunc wrapper.

Logging the wrapper as code instead of a cloudpickle means loading a logged model never
unpickles anything. Not meant to be imported by the project itself.
"""

import mlflow

from trainer.tracking import PyfuncModel

mlflow.models.set_model(PyfuncModel())
