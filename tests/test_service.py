"""The team setup, tested for real: a PostgreSQL-backed `mlflow server`, workers sharing a study,
a server that dies mid-training and one that restarts; and the compose file that describes it."""

import inspect
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from servers import MlflowServer, RefusingProxy

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--window",
    "1",
    "--stride",
    "2",
    "--d-model",
    "16",
    "--heads",
    "2",
    "--ff",
    "32",
    "--depth",
    "1",
    "--batch-size",
    "64",
]


@pytest.fixture
def server(module_postgres_url, tmp_path_factory):
    artifacts = tmp_path_factory.getbasetemp() / "server-artifacts"
    srv = MlflowServer(module_postgres_url, artifacts).start()
    yield srv
    srv.stop()


def emo(*args, server_url: str, cwd: Path, experiment: str, **popen) -> subprocess.Popen:
    """`emo ARGS` in a subprocess against the server; its output goes to a file (a pipe nobody reads
    while waiting for another worker would fill up and block it)."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server_url,
        "MLFLOW_EXPERIMENT_NAME": experiment,
        "EMO_CHECKPOINT_DIR": str(cwd / "checkpoints"),
        **popen.pop("env_extra", {}),
    }
    env.pop("MLFLOW_RUN_ID", None)
    log = cwd / f"emo-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emo.cli", *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            **popen,
        )
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
    proc = emo(
        "train",
        "video",
        "--data",
        str(corpus),
        "--window",
        "1",
        "--epochs",
        "3",
        "--patience",
        "5",
        server_url=server.url,
        cwd=tmp_path,
        experiment="rest",
    )
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


def test_workers_share_a_postgres_study_and_a_killed_workers_trial_is_retried(server, corpus, tmp_path, postgres_url):
    args = [
        "tune",
        "--family",
        "video",
        "--data",
        str(corpus),
        "--trials",
        "4",
        "--storage",
        postgres_url,
        "--study-name",
        "crash",
        "--pruner",
        "none",
        "--heartbeat",
        "1",
        "--epochs",
        "40",
        "--patience",
        "40",
        "--window",
        "1",
        "--stride",
        "2",
        "--space",
        str(ROOT / "tests" / "tiny_video_space.json"),
    ]
    workers = [
        emo(*args, server_url=server.url, cwd=tmp_path, experiment="crash", start_new_session=True) for _ in range(3)
    ]
    victim = workers[0]
    deadline = time.time() + 180
    study, busy = None, []
    while time.time() < deadline and not busy and victim.poll() is None:
        try:  # wait until the victim is in the middle of a trial
            study = study or optuna.load_study(study_name="crash", storage=postgres_url)
            busy = [
                t
                for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                if t.user_attrs.get("worker", "").endswith(f":{victim.pid}")
                and t.params
                and "mlflow_run_id" in t.user_attrs
            ]
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
    proc = emo(
        "train",
        "ffnn",
        "--data",
        str(corpus),
        "--epochs",
        "500",
        "--patience",
        "500",
        server_url=server.url,
        cwd=tmp_path,
        experiment="dies",
    )
    deadline = time.time() + 120
    run_id = None
    while time.time() < deadline and run_id is None:
        try:
            runs = runs_of(server, "dies")
            if (
                runs
                and len(
                    server.get("metrics/get-history", run_id=runs[0]["info"]["run_id"], metric_key="dev/loss")[
                        "metrics"
                    ]
                )
                >= 2
            ):
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
    proc = emo(
        "train",
        "fusion",
        "--data",
        str(corpus),
        "--epochs",
        "2",
        *TINY,
        server_url=server.url,
        cwd=tmp_path,
        experiment="restart",
    )
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    reg = emo(
        "register",
        "--experiment",
        "restart",
        "--name",
        "emo-fusion4-restart",
        server_url=server.url,
        cwd=tmp_path,
        experiment="restart",
    )
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
    tags = {t["key"]: t["value"] for t in version["tags"]}
    assert tags["source_run"] == run_id and version["version"] == "1"  # the registered version is this run's model


def test_a_champion_that_cannot_be_read_keeps_its_alias_and_nothing_is_registered(server, corpus, tmp_path):
    proc = emo(
        "train",
        "fusion",
        "--data",
        str(corpus),
        "--epochs",
        "1",
        *TINY,
        server_url=server.url,
        cwd=tmp_path,
        experiment="unread",
    )
    assert proc.wait(timeout=300) == 0, finish(proc)[-3000:]
    for status in (403, 500):  # an access rule's refusal, a broken server
        name = f"emo-fusion4-unread-{status}"
        first = emo("register", "--name", name, server_url=server.url, cwd=tmp_path, experiment="unread")
        assert finish(first, timeout=120) and first.returncode == 0
        # every read of the registered model (and of its alias) refused; runs, writes and the rest answered
        with RefusingProxy(
            server.url, ("registered-models/get", "registered-models/alias", "model-versions/get"), status=status
        ) as proxy:
            again = emo(
                "register",
                "--name",
                name,
                server_url=proxy.url,
                cwd=tmp_path,
                experiment="unread",
                env_extra={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
            )
            out = finish(again, timeout=120)
        assert proxy.refused, "the proxy was never asked for the champion"
        assert again.returncode == 2 and "Traceback" not in out, out[-3000:]
        assert f"could not read the current {name}@champion" in out and "alias is unchanged" in out
        versions = server.get("model-versions/search", filter=f"name='{name}'")["model_versions"]
        assert [v["version"] for v in versions] == ["1"]  # nothing new registered
        assert server.get("registered-models/alias", name=name, alias="champion")["model_version"]["version"] == "1"


# --- the compose file ------------------------------------------------------------------------------


def _interpolate(node, env: dict):
    """What docker compose does to the parsed file (values, not comments or keys). In every string:
    `$$` is a literal `$`; `$VAR`, `${VAR}` the value ('' if unset); `${VAR:-x}` x when VAR is unset or
    empty (`${VAR-x}`: unset); `${VAR:?msg}` an error when unset or empty (`${VAR?msg}`: unset);
    `${VAR:+x}` x when set and not empty (`${VAR+x}`: set), else ''. No nesting: the file has none."""
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def sub(m):
        dollar, name, op, arg, bare = m.groups()
        if dollar:
            return "$"
        value = env.get(name or bare)
        given = bool(value) if op and op.startswith(":") else value is not None
        if op and op.endswith("-"):
            return value if given else arg
        if op and op.endswith("?") and not given:
            raise KeyError(f"{name}: {arg}")
        if op and op.endswith("+"):
            return arg if given else ""
        return value or ""

    return re.sub(r"\$(?:(\$)|\{(\w+)(?:(:?[-?+])([^}]*))?\}|(\w+))", sub, node)


def _compose(env: dict) -> dict:
    return _interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()), env)


def _env_example() -> dict:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _command(service: dict) -> list[str]:
    """A service's command as the container gets it (compose splits a string as a shell would)."""
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else command


def test_compose_interpolation_follows_composes_rules():
    env = {"SET": "v", "EMPTY": ""}
    assert _interpolate(["$SET ${SET} ${UNSET} $$SET $${SET}"], env) == ["v v  $SET ${SET}"]
    assert _interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${SET:-d}", env) == "d  d v"
    assert _interpolate("${EMPTY:+r}|${EMPTY+r}|${SET:+r}|${UNSET+r}", env) == "|r|r|"
    assert _interpolate({"k": ["${EMPTY?m}", 5]}, env) == {"k": ["", 5]}
    for bad in ("${EMPTY:?must be set}", "${UNSET?must be set}"):
        with pytest.raises(KeyError, match="must be set"):
            _interpolate(bad, env)


# Secrets as a .env would hold them; the database password has every character that breaks a URL
DB_PASSWORD = "p@ss#w/rd:%x y+1"
SECRETS = {
    "POSTGRES_PASSWORD": DB_PASSWORD,
    "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-secret-0123",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "form-key-secret",
    "MLFLOW_TRACKING_PASSWORD": "worker-secret-0123",
}


def _stack_env() -> dict:
    return {**_env_example(), **SECRETS}


def _docker_module(name: str):
    """A script of docker/ imported as the containers run it (docker/ first on the path)."""
    import importlib

    sys.path.insert(0, str(ROOT / "docker"))
    try:
        return importlib.reload(importlib.import_module(name))
    finally:
        sys.path.remove(str(ROOT / "docker"))


def test_the_compose_stack_has_its_services_publishes_only_the_uis_on_localhost_and_holds_no_password():
    spec = _compose(_stack_env())
    services = spec["services"]
    assert set(services) == {"postgres", "migrate", "mlflow", "optuna-dashboard", "worker"}
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {"mlflow": ["127.0.0.1:5000:5000"], "optuna-dashboard": ["127.0.0.1:8080:8080"]}
    # the dashboard has no sign-in: it stays on loopback whatever .env says
    opened = _compose({**_stack_env(), "MLFLOW_BIND": "0.0.0.0", "DASHBOARD_BIND": "0.0.0.0"})["services"]
    assert opened["mlflow"]["ports"] == ["0.0.0.0:5000:5000"]
    assert opened["optuna-dashboard"]["ports"] == ["127.0.0.1:8080:8080"]
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / ".env.example").read_text()
    assert all(secret not in text for secret in SECRETS.values())
    for name in SECRETS:  # empty in the example, and compose refuses to start without each
        assert _env_example()[name] == ""
        with pytest.raises(KeyError, match=name):
            _compose({k: v for k, v in _stack_env().items() if k != name})
    assert "mlflow:*" in services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"]
    assert services["worker"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready -U ${POSTGRES_USER} -d ${POSTGRES_DB}"
    assert set(spec["volumes"]) == {"pgdata", "mlartifacts"}


def test_the_stack_signs_in_with_mlflows_basic_auth_and_the_workers_have_an_account(monkeypatch):
    from mlflow.cli import cli as mlflow_cli

    services = _compose(_stack_env())["services"]
    server = services["mlflow"]
    script, *args = _command(server)[1:]
    assert _command(server)[0] == "python" and script == "docker/mlflow_server.py"
    ctx = mlflow_cli.commands["server"].make_context("server", args)  # the options `mlflow server` gets
    assert ctx.params["app_name"] == "basic-auth" and ctx.params["serve_artifacts"]
    env = server["environment"]
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == SECRETS["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == SECRETS["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    worker = services["worker"]["environment"]
    assert worker["MLFLOW_TRACKING_USERNAME"] == "emo-worker"
    assert worker["MLFLOW_TRACKING_PASSWORD"] == SECRETS["MLFLOW_TRACKING_PASSWORD"]
    migrate = services["migrate"]["environment"]  # it creates that account, and checks the secrets first
    assert {k: migrate[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")} == {
        k: worker[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    }
    assert (
        "MLFLOW_AUTH_ADMIN_PASSWORD" not in worker
        and "MLFLOW_AUTH_ADMIN_PASSWORD" not in services["optuna-dashboard"]["environment"]
    )

    # the server script writes MLflow's auth config as MLflow reads it: the users' database, the
    # encoded password surviving configparser's `%`, the file readable by its owner only
    for key, value in {**env, "POSTGRES_HOST": "127.0.0.1"}.items():
        monkeypatch.setenv(key, value)
    stack = _docker_module("stack")
    path = stack.write_auth_config(stack.auth_db(), stack.default_permission())
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", path)
    import importlib.util

    from sqlalchemy.engine import make_url

    # MLflow's own reader, loaded alone: its package needs mlflow[auth], which the image has
    spec = importlib.util.spec_from_file_location(
        "auth_config", Path(mlflow.__file__).parent / "server" / "auth" / "config.py"
    )
    auth_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(auth_config)
    config = auth_config.read_auth_config()
    url = make_url(config.database_uri)
    assert (url.password, url.host, url.database) == (DB_PASSWORD, "127.0.0.1", "mlflow_auth")
    assert config.default_permission == "EDIT"
    assert (config.admin_username, config.admin_password) == ("admin", SECRETS["MLFLOW_AUTH_ADMIN_PASSWORD"])
    assert os.stat(path).st_mode & 0o077 == 0
    shutil.rmtree(Path(path).parent)


@pytest.mark.parametrize("password", ["", "password1234", "short"])
def test_the_stack_refuses_a_missing_default_or_short_admin_password_before_it_opens_anything(password, tmp_path):
    env = {
        **os.environ,
        **{k: str(v) for k, v in _compose(_stack_env())["services"]["migrate"]["environment"].items()},
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "1",
    }
    for script in (["docker/migrate.py"], ["docker/mlflow_server.py", "--app-name", "basic-auth"]):
        done = subprocess.run(
            [sys.executable, str(ROOT / script[0]), *script[1:]],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, (script, done.stderr[-2000:])
        (line,) = done.stderr.strip().splitlines()  # one line, no traceback, and no connection attempted
        assert line.startswith("error: MLFLOW_AUTH_ADMIN_PASSWORD"), line
        assert "in .env" in line


def test_passwords_reach_the_services_by_environment_only_and_urls_keep_every_character(monkeypatch):
    from sqlalchemy.engine import make_url

    services = _compose(_stack_env())["services"]
    for name, service in services.items():  # a command line is visible to everyone on the host (`ps`)
        command = " ".join(_command(service) + service.get("entrypoint", []))
        assert all(secret not in command for secret in SECRETS.values()), name
    # compose passes the parts; the scripts build each URL, encoding the password, and SQLAlchemy
    # reads back exactly that password, that host and that database
    stack = _docker_module("stack")
    expected = {"mlflow_db": "mlflow", "optuna_db": "optuna", "auth_db": "mlflow_auth"}
    for name, builders in {
        "migrate": expected,
        "mlflow": expected,
        "optuna-dashboard": ["optuna_db"],
        "worker": ["optuna_db"],
    }.items():
        env = services[name]["environment"]
        assert env["POSTGRES_PASSWORD"] == DB_PASSWORD, name
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        for builder in builders:
            url = make_url(getattr(stack, builder)())
            assert (url.username, url.password, url.host, url.port, url.database) == (
                "emo",
                DB_PASSWORD,
                "postgres",
                5432,
                expected[builder],
            ), (name, builder)
            assert url.get_dialect().driver == "psycopg"

    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert _command(services["migrate"]) == ["python", "docker/migrate.py"]
    for name in ("mlflow", "optuna-dashboard", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name


def test_the_images_and_the_tools_in_them_are_pinned():
    services = _compose(_stack_env())["services"]
    assert re.fullmatch(r"postgres:16\.\d+", services["postgres"]["image"])  # an exact release, not "16"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim$", dockerfile, re.M)
    assert "COPY docker ./docker" in dockerfile
    (pin,) = re.findall(r'"mlflow\[auth\]==([^"]+)"', dockerfile)  # the tested release, with basic auth
    assert _dependencies()["mlflow"].specifier.contains(pin)
    assert re.search(r'"optuna-dashboard==[\d.]+"', dockerfile) and re.search(r'"gunicorn==[\d.]+"', dockerfile)
    (gunicorn,) = re.findall(r'"gunicorn==([^"]+)"', dockerfile)
    from packaging.version import Version

    assert Version(gunicorn) < Version("27")  # mlflow requires gunicorn<27


def test_postgres_is_published_only_with_the_opt_in_override_on_the_address_chosen():
    base = _compose(_stack_env())["services"]
    assert "ports" not in base["postgres"]
    override = ROOT / "docker-compose.postgres-port.yml"
    spec = yaml.safe_load(override.read_text())
    assert set(spec["services"]) == {"postgres"}
    assert _interpolate(spec, {**_stack_env(), "POSTGRES_BIND": "10.0.0.5"})["services"]["postgres"]["ports"] == [
        "10.0.0.5:5432:5432"
    ]
    with pytest.raises(KeyError, match="POSTGRES_BIND"):  # no default address: never every interface by accident
        _interpolate(spec, _stack_env())
    readme = (ROOT / "README.md").read_text()
    assert "docker-compose.postgres-port.yml" in readme and "EMO_STORAGE=" in readme


def test_the_migrate_step_prepares_every_database_and_the_server_signs_in_its_accounts_only(postgres_url, tmp_path):
    """docker/migrate.py (twice), then docker/mlflow_server.py with the options compose gives, against
    the real PostgreSQL (trust authentication: the password is not checked, but every URL holding it
    must parse to the right user, host and database, through alembic's and configparser's `%` too)."""
    pytest.importorskip("flask_wtf", reason="mlflow[auth], which the image installs, is not installed here")
    import base64
    import urllib.error
    import urllib.request

    import psycopg
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy.engine import make_url

    from emo.studies.storage import make_storage

    from servers import free_port

    name = make_url(postgres_url).database
    env = {
        **os.environ,
        **{k: str(v) for k, v in _compose(_stack_env())["services"]["migrate"]["environment"].items()},
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_USER": "postgres",
        "MLFLOW_DB": name,
        "OPTUNA_DB": f"{name}_optuna",
        "MLFLOW_AUTH_DB": f"{name}_auth",
    }
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        env.pop(key, None)
    server, port = None, free_port()
    try:
        for _ in range(2):  # empty databases (two of them missing), then up-to-date ones
            done = subprocess.run(
                [sys.executable, str(ROOT / "docker" / "migrate.py")],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            assert DB_PASSWORD not in done.stdout + done.stderr
        assert "This storage is up-to-date" in done.stderr
        assert mlflow.MlflowClient(postgres_url).search_experiments()[0].name == "Default"
        optuna_url = postgres_url.replace(f"/{name}", f"/{name}_optuna")
        study = optuna.create_study(storage=make_storage(optuna_url), study_name="after-migrate")
        assert study.study_name in optuna.get_all_study_names(optuna_url)
        store = SqlAlchemyStore()
        store.init_db(postgres_url.replace(f"/{name}", f"/{name}_auth"))
        assert store.authenticate_user("emo-worker", SECRETS["MLFLOW_TRACKING_PASSWORD"])
        store.engine.dispose()

        options = _command(_compose(_stack_env())["services"]["mlflow"])[2:]
        options = [o for o in options if o not in ("0.0.0.0", "5000", "/mlartifacts")]
        assert options == [
            "--app-name",
            "basic-auth",
            "--artifacts-destination",
            "--serve-artifacts",
            "--host",
            "--port",
        ]
        with open(tmp_path / "server.log", "w") as out:
            server = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "docker" / "mlflow_server.py"),
                    "--app-name",
                    "basic-auth",
                    "--artifacts-destination",
                    str(tmp_path / "artifacts"),
                    "--serve-artifacts",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):  # open to all: compose's healthcheck
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(0.5)
        else:
            pytest.fail("the MLflow server did not answer /health")

        def search(user: str | None, password: str = "") -> int:
            req = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1")
            if user:
                req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        assert search(None) == 401 and search("emo-worker", "wrong-password-1") == 401
        assert search("admin", SECRETS["MLFLOW_AUTH_ADMIN_PASSWORD"]) == 200
        # a worker logs a run as compose's workers do: the account from its environment
        worker_env = {
            **env,
            **{
                k: str(v)
                for k, v in _compose(_stack_env())["services"]["worker"]["environment"].items()
                if k.startswith("MLFLOW_TRACKING_")
            },
            "MLFLOW_TRACKING_URI": url,
        }
        logged = subprocess.run(
            [
                sys.executable,
                "-c",
                "import mlflow\nwith mlflow.start_run() as r: mlflow.log_metric('m', 1.0)\nprint(r.info.run_id)",
            ],
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert logged.returncode == 0, logged.stderr[-2000:]
        run = mlflow.MlflowClient(postgres_url).get_run(logged.stdout.split()[-1])
        assert run.data.metrics == {"m": 1.0} and run.info.user_id == "emo-worker"
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            for db in (f"{name}_optuna", f"{name}_auth"):
                conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def test_every_compose_command_is_one_that_its_tool_accepts_with_the_url_from_the_environment(tmp_path):
    from gunicorn.config import Config as GunicornConfig

    services = _compose(_stack_env())["services"]

    dashboard = _command(services["optuna-dashboard"])
    assert dashboard[0] == "gunicorn"
    parsed = GunicornConfig().parser().parse_args(dashboard[1:])
    assert parsed.bind == ["0.0.0.0:8080"] and parsed.args == ["dashboard:app"]
    app = (ROOT / parsed.pythonpath / "dashboard.py").read_text()
    assert "optuna_dashboard.wsgi(stack.optuna_db())" in app
    assert "optuna-dashboard" in (ROOT / "Dockerfile").read_text()

    # the worker's command, run as compose runs it, takes its storage from the database variables:
    # here a port where nothing listens, so the run waits for it (1 s here), stops, and says so without the
    # password
    worker = _command(services["worker"])
    assert worker[:3] == ["python", "docker/worker.py", "tune"]
    env = {
        **os.environ,
        **{k: str(v) for k, v in services["worker"]["environment"].items()},
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": "1",
        "EMO_DATA_HOME": str(tmp_path),
        "EMO_STORAGE_RETRY_SECONDS": "1",
    }
    env.pop("MLFLOW_TRACKING_URI")
    done = subprocess.run(
        [sys.executable, str(ROOT / worker[1]), *worker[2:]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "the Optuna storage postgresql+psycopg://emo:***@127.0.0.1:1/optuna has been unreachable" in done.stderr
    assert DB_PASSWORD not in done.stdout + done.stderr and "p%40ss" not in done.stdout + done.stderr
    init = (ROOT / "docker" / "postgres-init.sh").read_text()
    assert "CREATE DATABASE" in init and os.access(ROOT / "docker" / "postgres-init.sh", os.X_OK)


# --- dependencies: the versions emo needs, one torch, one list -----------------------------------------

# The oldest release with each API emo calls, read in the releases' wheels; the floors in pyproject.toml
# must not admit anything older.
API_FLOORS = {
    # RDBStorage(heartbeat_stale_trial_callback=) and storages.RetryHeartbeatStaleTrialCallback: 4.8 has neither
    "optuna": "4.9",
    # log_model(name=) and LoggedModels (models:/m-…): 3.0; the server's allowed hosts: 3.5; the default
    # tracking store sqlite:///mlflow.db that emo documents: 3.7 (3.6 still defaults to ./mlruns)
    "mlflow": "3.7",
    "sqlalchemy": "2.0",  # the postgresql+psycopg dialect that emo.dburl names
}
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def _dependencies() -> dict:
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {Requirement(d).name.lower(): Requirement(d) for d in deps}


def _conda_pip() -> list[str]:
    deps = yaml.safe_load((ROOT / "conda.yaml").read_text())["dependencies"]
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    return pip


def test_the_dependency_floors_admit_only_releases_with_the_apis_emo_calls():
    from packaging.version import Version

    deps = _dependencies()
    for name, floor in API_FLOORS.items():
        lows = [Version(s.version) for s in deps[name].specifier if s.operator in (">=", ">", "==", "~=")]
        assert lows and max(lows) >= Version(floor), f"{deps[name]} admits {name} older than {floor}"
    # the APIs the floors stand for, in the installed releases
    assert hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")
    assert "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
    assert "name" in inspect.signature(mlflow.pyfunc.log_model).parameters


def test_conda_yaml_installs_pyprojects_dependencies_with_the_images_torch():
    from packaging.requirements import Requirement

    deps = _dependencies()
    conda = {Requirement(d).name.lower(): Requirement(d) for d in _conda_pip() if d != CPU_INDEX}
    assert set(conda) == set(deps)
    for name, req in deps.items():
        if name == "torch":  # pinned, inside pyproject's range (next test: the same pin everywhere)
            (spec,) = conda[name].specifier
            assert spec.operator == "==" and req.specifier.contains(spec.version)
        else:
            assert str(conda[name]) == str(req)


def test_a_logged_model_conda_yaml_and_the_image_install_the_same_cpu_torch():
    from emo.runs.bundle import pip_requirements as _requirements

    (image_torch,) = re.findall(
        r'--index-url https://download.pytorch.org/whl/cpu "torch==([^"]+)"', (ROOT / "Dockerfile").read_text()
    )
    reqs, conda = _requirements(), _conda_pip()
    assert CPU_INDEX in reqs and CPU_INDEX in conda  # else pip takes PyPI's CUDA build on Linux
    assert f"torch=={image_torch}" in reqs and f"torch=={image_torch}" in conda


# --- PostgreSQL URLs: the driver named, not left to SQLAlchemy ------------------------------------------


def test_a_postgres_url_names_the_psycopg_driver_and_others_are_kept():
    from sqlalchemy.engine import make_url

    from emo.dburl import sqlalchemy_url

    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgres://u:pw@h:5432/db") == "postgresql+psycopg://u:pw@h:5432/db"
    for kept in (
        "postgresql+psycopg2://u@h/db",
        "postgresql+psycopg://u@h/db",
        "sqlite:///optuna.db",
        "mysql+pymysql://u@h/db",
    ):
        assert sqlalchemy_url(kept) == kept
    assert make_url(sqlalchemy_url("postgresql://u@h/db")).get_dialect().driver == "psycopg"


def test_a_plain_postgresql_url_opens_a_study_where_sqlalchemy_would_pick_psycopg2(postgres_url, monkeypatch):
    import importlib.util

    import sqlalchemy
    from sqlalchemy.dialects.postgresql import base, psycopg2

    from emo.studies.storage import StorageUnavailableError, make_storage

    monkeypatch.setattr(base, "dialect", psycopg2.dialect)  # SQLAlchemy 2.0's default driver for postgresql://
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    if importlib.util.find_spec("psycopg2") is None:  # emo does not install it
        with pytest.raises(ImportError, match="psycopg2"):
            sqlalchemy.create_engine(plain)
    storage = make_storage(plain)
    assert storage.engine.dialect.driver == "psycopg"
    optuna.create_study(storage=storage, study_name="plain-url")
    assert optuna.get_all_study_names(storage) == ["plain-url"]
    monkeypatch.setenv("EMO_STORAGE_RETRY_SECONDS", "0")  # nothing listens there: no waiting for it
    with pytest.raises(StorageUnavailableError) as failed:  # and the password stays out of the message
        make_storage("postgres://emo:hunter2@127.0.0.1:1/optuna")
    assert "postgresql+psycopg://emo:***@127.0.0.1:1/optuna" in str(failed.value) and "hunter2" not in str(failed.value)


# --- CI: the PostgreSQL tests run or fail, never skip ------------------------------------------------


def test_an_unreachable_postgres_skips_on_a_laptop_and_fails_in_ci(monkeypatch):
    from conftest import fresh_database

    from servers import free_port

    port = free_port()  # nothing listens there
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"127.0.0.1:{port}"):
        with fresh_database(port=port):
            pass
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must test the PostgreSQL setup"):
        with fresh_database(port=port):
            pass
    ci = (ROOT / ".ci" / "run").read_text()
    assert "CI=true python -m pytest" in ci and "127.0.0.1:5432" in ci and "chromium" in ci
