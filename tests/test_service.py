"""The team setup, tested for real: a PostgreSQL-backed `mlflow server`, workers sharing a study,
a server that dies mid-training and one that restarts; and the compose file that describes it."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from servers import MlflowServer

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--window", "1", "--stride", "2", "--d-model", "16", "--heads", "2", "--ff", "32", "--depth", "1",
        "--batch-size", "64"]


@pytest.fixture
def server(module_postgres_url, tmp_path_factory):
    artifacts = tmp_path_factory.getbasetemp() / "server-artifacts"
    srv = MlflowServer(module_postgres_url, artifacts).start()
    yield srv
    srv.stop()


def emo(*args, server_url: str, cwd: Path, experiment: str, **popen) -> subprocess.Popen:
    """`emo ARGS` in a subprocess against the server; its output goes to a file (a pipe nobody reads
    while waiting for another worker would fill up and block it)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": server_url, "MLFLOW_EXPERIMENT_NAME": experiment,
           "EMO_CHECKPOINT_DIR": str(cwd / "checkpoints")}
    env.pop("MLFLOW_RUN_ID", None)
    log = cwd / f"emo-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "emo.cli", *args], env=env, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, text=True, **popen)
    proc.log = log
    return proc


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    """Wait for `proc` and return what it printed."""
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.log.read_text()


def runs_of(server: MlflowServer, experiment: str) -> list[dict]:
    exp = server.get("experiments/get-by-name", experiment_name=experiment)["experiment"]
    return server.post("runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000}).get("runs", [])


def test_a_training_against_the_server_is_readable_through_the_rest_api(server, corpus, tmp_path):
    proc = emo("train", "video", "--data", str(corpus), "--window", "1", "--epochs", "3", "--patience", "5",
               server_url=server.url, cwd=tmp_path, experiment="rest")
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    (run,) = runs_of(server, "rest")
    run_id = run["info"]["run_id"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["family"] == "video" and params["window"] == "1.0" and len(params["split_hash"]) == 12
    history = server.get("metrics/get-history", run_id=run_id, metric_key="dev/loss")["metrics"]
    assert sorted(m["step"] for m in history) == [1, 2, 3]
    files = server.get("artifacts/list", run_id=run_id, path="checkpoints")["files"]
    assert [f["path"] for f in files] == ["checkpoints/checkpoint.pt"] and int(files[0]["file_size"]) > 0
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    mlflow.set_tracking_uri(server.url)
    try:
        model = mlflow.pyfunc.load_model(tags["emo.model_uri"])
        assert model.metadata.signature.inputs.input_names() == ["video"]
    finally:
        mlflow.set_tracking_uri(None)


def test_workers_share_a_postgres_study_and_a_killed_workers_trial_is_retried(server, corpus, tmp_path,
                                                                              postgres_url):
    args = ["tune", "--family", "video", "--data", str(corpus), "--trials", "4", "--storage", postgres_url,
            "--study-name", "crash", "--pruner", "none", "--heartbeat", "1", "--epochs", "40", "--patience", "40",
            "--window", "1", "--stride", "2", "--space", str(ROOT / "tests" / "tiny_video_space.json")]
    workers = [emo(*args, server_url=server.url, cwd=tmp_path, experiment="crash", start_new_session=True)
               for _ in range(3)]
    victim = workers[0]
    deadline = time.time() + 180
    study, busy = None, []
    while time.time() < deadline and not busy and victim.poll() is None:
        try:  # wait until the victim is in the middle of a trial
            study = study or optuna.load_study(study_name="crash", storage=postgres_url)
            busy = [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                    if t.user_attrs.get("worker", "").endswith(f":{victim.pid}") and t.params
                    and "mlflow_run_id" in t.user_attrs]
        except KeyError:
            time.sleep(0.2)
    assert busy, "the first worker never started a trial"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    outputs = [finish(w, timeout=400) for w in workers[1:]]
    assert all(w.returncode == 0 for w in workers[1:]), outputs[0][-2000:] + outputs[1][-2000:]

    trials = optuna.load_study(study_name="crash", storage=postgres_url).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(complete) == 4
    assert [t.number for t in failed] == [busy[0].number]  # the killed worker's trial, and only it
    retried = [t for t in complete if t.system_attrs.get("failed_trial") == busy[0].number]
    assert len(retried) == 1 and retried[0].params == failed[0].params
    runs = {r["info"]["run_id"]: r for r in runs_of(server, "crash")}
    for t in complete:
        assert runs[t.user_attrs["mlflow_run_id"]]["info"]["status"] == "FINISHED"
    dead = runs[busy[0].user_attrs["mlflow_run_id"]]
    assert dead["info"]["status"] == "FAILED"
    assert any(tag["key"] == "failure_reason" and "heartbeats" in tag["value"] for tag in dead["data"]["tags"])


def test_a_server_that_dies_mid_training_fails_the_training_fast_and_keeps_the_checkpoint(server, corpus, tmp_path):
    proc = emo("train", "ffnn", "--data", str(corpus), "--epochs", "500", "--patience", "500",
               server_url=server.url, cwd=tmp_path, experiment="dies")
    deadline = time.time() + 120
    run_id = None
    while time.time() < deadline and run_id is None:
        try:
            runs = runs_of(server, "dies")
            if runs and len(server.get("metrics/get-history", run_id=runs[0]["info"]["run_id"],
                                       metric_key="dev/loss")["metrics"]) >= 2:
                run_id = runs[0]["info"]["run_id"]
        except Exception:
            pass
        time.sleep(0.2)
    assert run_id, "the training never logged two epochs"
    server.stop()
    stopped = time.time()
    out = finish(proc, timeout=120)
    assert time.time() - stopped < 60  # fails fast, never hangs
    assert proc.returncode == 2
    assert f"lost the MLflow tracking server at {server.url}" in out and f"--resume {run_id}" in out
    assert "Traceback" not in out
    assert (tmp_path / "checkpoints" / run_id / "checkpoint.pt").exists()


def test_after_a_restart_runs_metrics_and_registered_models_are_all_there(server, corpus, tmp_path):
    proc = emo("train", "fusion", "--data", str(corpus), "--epochs", "2", *TINY,
               server_url=server.url, cwd=tmp_path, experiment="restart")
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    reg = emo("register", "--experiment", "restart", "--name", "emo-fusion4-restart", server_url=server.url,
              cwd=tmp_path, experiment="restart")
    out = finish(reg, timeout=120)
    assert reg.returncode == 0, out[-3000:]
    (before,) = runs_of(server, "restart")
    server.stop()
    server.start()
    (after,) = runs_of(server, "restart")
    assert after["data"]["params"] == before["data"]["params"]
    assert after["data"]["metrics"] == before["data"]["metrics"]
    run_id = after["info"]["run_id"]
    assert len(server.get("metrics/get-history", run_id=run_id, metric_key="dev/loss")["metrics"]) == 2
    version = server.get("registered-models/alias", name="emo-fusion4-restart", alias="champion")["model_version"]
    assert version["run_id"] == run_id or any(t["value"] == run_id for t in version.get("tags", []))


# --- the compose file ------------------------------------------------------------------------------

def _expand(text: str, env: dict) -> str:
    """docker compose's ${VAR}, ${VAR:-default} and ${VAR:?message} substitution, $$ as $."""
    def sub(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op == ":-":
            return value or arg
        if op == ":?" and not value:
            raise KeyError(f"{name}: {arg}")
        return value or ""
    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", sub, text).replace("$$", "$")


def _compose(env: dict) -> dict:
    return yaml.safe_load(_expand((ROOT / "docker-compose.yml").read_text(), env))


def _env_example() -> dict:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_compose_stack_has_its_services_publishes_only_the_uis_on_localhost_and_holds_no_password():
    env = {**_env_example(), "POSTGRES_PASSWORD": "secret"}
    spec = _compose(env)
    services = spec["services"]
    assert set(services) == {"postgres", "mlflow", "optuna-dashboard", "worker"}
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {"mlflow": ["127.0.0.1:5000:5000"], "optuna-dashboard": ["127.0.0.1:8080:8080"]}
    assert "secret" not in (ROOT / "docker-compose.yml").read_text() + (ROOT / ".env.example").read_text()
    assert _env_example()["POSTGRES_PASSWORD"] == ""
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        _compose({k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"})
    assert "mlflow:*" in services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"]
    assert services["worker"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert set(spec["volumes"]) == {"pgdata", "mlartifacts"}


def test_every_compose_command_is_one_that_emo_or_mlflow_accepts():
    from mlflow.cli import cli as mlflow_cli

    from emo.cli import main as emo_cli

    services = _compose({**_env_example(), "POSTGRES_PASSWORD": "secret"})["services"]
    server_args = services["mlflow"]["command"].split()
    assert server_args[:2] == ["mlflow", "server"]
    ctx = mlflow_cli.commands["server"].make_context("server", server_args[2:])  # raises on an unknown option
    assert ctx.params["backend_store_uri"].startswith("postgresql://") and ctx.params["serve_artifacts"]
    worker_args = services["worker"]["command"].split()
    assert worker_args[:2] == ["emo", "tune"]
    ctx = emo_cli.commands["tune"].make_context("tune", worker_args[2:])
    assert ctx.params["storage"].startswith("postgresql+psycopg://") and ctx.params["trials"] == 40
    dashboard = services["optuna-dashboard"]["command"].split()
    assert dashboard[0] == "optuna-dashboard" and dashboard[1].startswith("postgresql+psycopg://")
    assert "optuna-dashboard" in (ROOT / "Dockerfile").read_text()
    init = (ROOT / "docker" / "postgres-init.sh").read_text()
    assert "CREATE DATABASE" in init and os.access(ROOT / "docker" / "postgres-init.sh", os.X_OK)
