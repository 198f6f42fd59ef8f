"""What the rest of emo reads from the tracking store (runs, experiments, their files and logged models)
and adds to runs this process does not hold. Everything read back is data: tables are parquet, texts
are text, models are rebuilt from plain checkpoints (see `emo.runs.bundle`)."""

from __future__ import annotations

from emo.core.errors import ConfigError, TrackingError, short_error

MAX_RESULTS = 50000


def _client():
    import mlflow

    return mlflow.MlflowClient()


def masked_uri() -> str:
    """The tracking URI, its password masked, for messages and reports."""
    import mlflow

    from emo.dburl import masked

    return masked(mlflow.get_tracking_uri())


def find_run(run_id: str):
    """The run `run_id`, or None when the store has none by that id."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_run(run_id)
    except MlflowException:
        return None


def find_experiment(name_or_id: str):
    """The experiment named `name_or_id`, else the one with that id, else None."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        return client.get_experiment_by_name(name_or_id) or client.get_experiment(name_or_id)
    except MlflowException:
        return None


def experiment_of(run):
    """The experiment a run is in."""
    return _client().get_experiment(run.info.experiment_id)


def search(filter_string: str, experiment_ids: list[str] | None = None) -> list:
    """The runs matching `filter_string` in `experiment_ids` (None: every experiment)."""
    import mlflow

    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in mlflow.search_experiments()]
    return list(_client().search_runs(experiment_ids, filter_string, max_results=MAX_RESULTS))


def children(parent_id: str, experiment_ids: list[str] | None = None) -> list:
    """The child runs of `parent_id` (in every experiment when `experiment_ids` is None: a worker may have
    logged its runs outside its parent's)."""
    return search(f"tags.mlflow.parentRunId = '{parent_id}'", experiment_ids)


def run_table(run_id: str, path: str):
    """A parquet table a run logged (such as its test predictions), as a DataFrame (data, not code)."""
    import mlflow
    import pandas as pd

    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    except Exception as exc:
        raise TrackingError(
            f"run {run_id} has no {path} ({short_error(exc)}); it was logged by an older emo, or the "
            f"artifact store is not reachable."
        ) from None
    return pd.read_parquet(local)


def run_text(run_id: str, path: str) -> str | None:
    """A text file a run logged (such as a matrix's cells.txt); None where the run has none."""
    import mlflow

    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{path}")
    except Exception:  # absent (an older run) or unreadable: the caller says what that leaves unknown
        return None


def log_artifacts(run_id: str, folder, artifact_path: str) -> None:
    """Log a local folder's files to a run that is not this process's active one."""
    _client().log_artifacts(run_id, str(folder), artifact_path)


def load_model(uri: str):
    """The pyfunc model at `uri` (`models:/emo-fusion4@champion`, `models:/m-…`, `runs:/…/model`)."""
    import mlflow

    try:
        return mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise ConfigError(
            f"cannot load the model {uri!r} from {mlflow.get_tracking_uri()} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Check the URI "
            f"(`mlflow ui` lists registered models) and MLFLOW_TRACKING_URI."
        ) from None


def model_bundle(model_uri: str):
    """The saved network of a logged emo model (`emo.runs.bundle.NetworkBundle`), read as data only: the
    model's code is not run."""
    import mlflow

    from emo.runs.bundle import NetworkBundle

    try:
        where = model_uri.rstrip("/")
        if where.startswith("models:/m-"):  # a logged model's id: its files are at its artifact location
            where = mlflow.get_logged_model(where.removeprefix("models:/")).artifact_location
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"{where}/artifacts/model.pt")
    except Exception as exc:
        raise TrackingError(
            f"cannot read the network of model {model_uri} ({short_error(exc)}); only emo's torch models "
            f"(not the scikit-learn baselines) can be fused."
        ) from None
    return NetworkBundle.load(local)
