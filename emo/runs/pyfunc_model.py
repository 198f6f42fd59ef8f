"""The models-from-code file MLflow stores with every emo model: it builds the pyfunc on load."""

import mlflow

from emo.runs.pyfunc import EmoModel

mlflow.models.set_model(EmoModel())
