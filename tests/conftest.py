import contextlib
import logging
import os
import sys

# Training tests run on one thread: on a shared 2-core machine torch's default threads spin-wait and
# run many times slower. Set before torch is imported; subprocesses (mlflow run, workers) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the `tables` helper module


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)
    logging.getLogger("emo").setLevel(logging.INFO)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small synthetic SEWA-like corpus shared by the training tests (generated once)."""
    from emo.data.synth import SynthConfig, synthesize

    return synthesize(
        tmp_path_factory.mktemp("corpus") / "sewa", SynthConfig(videos=12, duration_s=30.0, dim=16, audio_dim=8, seed=1)
    )


@pytest.fixture(scope="session")
def fusion_corpus(tmp_path_factory):
    """A synthetic corpus with enough videos for fusion models to generalise to unseen faces."""
    from emo.data.synth import SynthConfig, synthesize

    return synthesize(
        tmp_path_factory.mktemp("corpus") / "sewa-fusion",
        SynthConfig(videos=32, duration_s=40.0, dim=16, audio_dim=8, seed=2),
    )


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory):
    """One migrated sqlite tracking store; tests copy it instead of migrating a new one each time."""
    import mlflow

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking(tmp_path, monkeypatch, _migrated_store):
    """A fresh sqlite tracking store (and artifact folder) for one test, set as MLflow's tracking URI."""
    import shutil

    import mlflow

    db = tmp_path / "mlflow.db"
    shutil.copy(_migrated_store, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.setenv("EMO_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    yield uri
    # set_experiment() exports the experiment's id for child processes: it must not reach the next store
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    mlflow.tracking.fluent._active_experiment_id = None
    mlflow.set_tracking_uri(None)


def postgres_missing(reason: str) -> None:
    """No PostgreSQL to test against: a skip on a developer's machine, a failure in CI (CI=true),
    where a skip would let the distributed setup go untested while the run still passes."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason}; CI must test the PostgreSQL setup (.ci/run starts the server)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def fresh_database(host: str = "127.0.0.1", port: int = 5432):
    """A new PostgreSQL database, dropped afterwards; without a server there, see `postgres_missing`.
    The URL names the psycopg driver, as emo's own URLs do (emo.dburl)."""
    import uuid

    import psycopg

    try:
        conn = psycopg.connect(f"postgresql://postgres@{host}:{port}/postgres", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        postgres_missing(f"PostgreSQL is not reachable at {host}:{port} ({str(exc).strip()})")
    name = f"emo_test_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@{host}:{port}/{name}"
    finally:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url():
    """A fresh PostgreSQL database shared by one test module (MLflow's migrations run once)."""
    with fresh_database() as url:
        yield url
