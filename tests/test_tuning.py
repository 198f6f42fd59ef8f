"""Optuna studies: a parent run with one nested run per trial, pruning, shared studies, and the champion."""

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time

import mlflow
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from emo.cli import main
from emo.core.config import Config
from emo.core.errors import ConfigError
from emo.experiment import run_experiment
from emo.runs import champion
from emo.studies.tuning import search_space, suggest, tune

TINY = dict(
    family="fusion",
    method=4,
    variant="v2",
    window=1,
    stride=2,
    epochs=3,
    d_model=16,
    heads=2,
    ff=32,
    repeats=1,
    batch_size=64,
)
SPACE = {
    "window": None,
    "patience": None,
    "batch_size": None,
    "label_delay": None,
    "d_model": {"choices": [16, 32]},
    "ff": {"choices": [32]},
    "repeats": {"low": 1, "high": 2},
}


def test_a_study_has_a_parent_run_a_nested_run_per_trial_prunes_and_registers_a_champion(fusion_corpus, tracking):
    base = Config(data=str(fusion_corpus), **TINY)
    result = tune(
        base,
        trials=4,
        storage=f"sqlite:///{os.getcwd()}/optuna.db",
        study_name="s1",
        space=SPACE,
        pruner="percentile:1",
        sampler_seed=0,
        progress=False,
    )
    states = [t.state for t in result.study.trials]
    assert len(states) == 4 and states.count(optuna.trial.TrialState.PRUNED) >= 1
    assert optuna.trial.TrialState.COMPLETE in states

    client = mlflow.MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.data.params["study_name"] == "s1" and parent.data.params["pruner"] == "percentile:1"
    assert json.loads(parent.data.params["search_space"])["d_model"] == {"choices": [16, 32]}
    assert [m.step for m in client.get_metric_history(parent.info.run_id, "best_value")] == [0, 1, 2, 3]
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} >= {"plots/optimization_history.png"}
    children = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 4
    by_trial = {int(r["tags.optuna.trial_number"]): r for _, r in children.iterrows()}
    for t in result.study.trials:
        run = by_trial[t.number]
        assert run["tags.emo.trial_state"] == t.state.name
        assert run["run_id"] == t.user_attrs["mlflow_run_id"]
        assert run["status"] == {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}[t.state.name]
    # the test set was never seen by a trial; only the winner gets test metrics, after the study
    winner = by_trial[result.best_trial.number]
    assert winner["metrics.test/rmse_valence"] == pytest.approx(result.test["test/rmse_valence"])
    losers = children[children["run_id"] != winner["run_id"]]
    assert losers["metrics.test/rmse_valence"].isna().all()

    reg = champion.register(client.get_run(winner["run_id"]))
    assert reg.champion and reg.version == "1"
    version = client.get_model_version_by_alias("emo-fusion4", "champion")
    assert version.tags["source_run"] == winner["run_id"] and "test/rmse_valence" in version.tags
    assert version.tags["split_hash"] == winner["params.split_hash"]
    model = mlflow.pyfunc.load_model("models:/emo-fusion4@champion")
    assert model.metadata.signature.inputs.input_names() == ["video", "audio", "audio_mask"]


def test_the_champion_alias_moves_only_to_a_better_model(fusion_corpus, tracking):
    def trained(**kw):
        result = run_experiment(Config(data=str(fusion_corpus), **{**TINY, **kw}), progress=False)
        return mlflow.MlflowClient().get_run(result.run_id)

    middling = trained(epochs=1)
    worse = trained(epochs=1, lr=1e-6)
    better = trained(epochs=4, lr=3e-3)
    d = {r.info.run_id: r.data.metrics["best_dev/rmse_mean"] for r in (middling, worse, better)}
    assert d[worse.info.run_id] > d[middling.info.run_id] > d[better.info.run_id]

    assert champion.register(middling).champion
    second = champion.register(worse)
    assert not second.champion and "does not beat champion version 1" in second.reason
    third = champion.register(better)
    assert third.champion and "beats champion version 1" in third.reason
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("emo-fusion4", "champion").version) == "3"
    # `emo register` picks the best Fusion 4 run of all by dev metric
    assert champion.best_fusion4_run().info.run_id == better.info.run_id


def test_emo_predict_writes_per_window_predictions_and_prints_metrics(fusion_corpus, tracking, tmp_path):
    result = run_experiment(Config(data=str(fusion_corpus), **TINY), progress=False)
    out = tmp_path / "pred.parquet"
    cli = CliRunner().invoke(
        main,
        ["predict", "--model", result.model_uri, "--data", str(fusion_corpus), "--split", "dev", "--out", str(out)],
    )
    assert cli.exit_code == 0, cli.output
    import pandas as pd

    table = pd.read_parquet(out)
    assert list(table.columns) == ["video_id", "start", "end", "valence", "arousal", "true_valence", "true_arousal"]
    assert (table["end"] - table["start"]).round(6).eq(1.0).all()
    rmse_v = ((table["valence"] - table["true_valence"]) ** 2).mean() ** 0.5
    assert rmse_v == pytest.approx(result.dev["dev/rmse_valence"], abs=1e-5)
    assert "RMSE V" in cli.output


def test_a_worker_that_leaves_early_leaves_the_studys_parent_run_open(fusion_corpus, tracking):
    base = Config(data=str(fusion_corpus), **{**TINY, "epochs": 1})
    result = tune(
        base,
        trials=50,
        timeout=3,
        storage=f"sqlite:///{os.getcwd()}/optuna.db",
        study_name="early",
        space=SPACE,
        pruner="none",
        progress=False,
    )
    assert len(result.study.trials) < 50
    assert mlflow.MlflowClient().get_run(result.parent_run_id).info.status == "RUNNING"
    # the study is not complete: this worker neither tests a winner nor registers one
    assert result.test == {} and result.registration is None and "winner" not in result.study.user_attrs


def test_the_champion_is_compared_like_for_like_on_the_candidates_dev_windows_by_the_studys_metric(
    fusion_corpus, tracking
):
    def trained(**kw):
        result = run_experiment(Config(data=str(fusion_corpus), **{**TINY, **kw}), progress=False)
        return mlflow.MlflowClient().get_run(result.run_id)

    two_seconds = trained(window=2, epochs=2)
    one_second = trained(window=1, epochs=2)
    assert champion.register(two_seconds, metric="ccc").champion
    second = champion.register(one_second, metric="ccc")
    assert "both scored on the candidate's dev targets" in second.reason and "dev CCC" in second.reason
    version = mlflow.MlflowClient().get_model_version("emo-fusion4", second.version)
    ours = pd.read_parquet(
        mlflow.artifacts.download_artifacts(run_id=one_second.info.run_id, artifact_path="predictions/dev.parquet")
    )
    theirs = pd.read_parquet(
        mlflow.artifacts.download_artifacts(run_id=two_seconds.info.run_id, artifact_path="predictions/dev.parquet")
    )
    n = int(second.reason.split("(")[-1].split()[0])
    assert 0 < n <= len(ours) and len(theirs) > 0  # on the candidate's windows that the champion can read
    # the champion's number is its CCC on the candidate's targets, not its own logged one
    assert float(version.tags["emo.champion_dev"]) != pytest.approx(champion.score(two_seconds.data.metrics, "ccc"))
    assert version.tags["emo.metric"] == "ccc"
    assert second.champion == (float(version.tags["emo.candidate_dev"]) > float(version.tags["emo.champion_dev"]))


def _study_with_one_finished_trial(storage_url: str, run) -> None:
    study = optuna.create_study(storage=storage_url, study_name="race")
    study.add_trial(
        optuna.trial.create_trial(
            value=run.data.metrics["best_dev/rmse_mean"],
            params={},
            distributions={},
            user_attrs={"mlflow_run_id": run.info.run_id, "model_uri": run.data.tags["emo.model_uri"]},
        )
    )


def test_workers_ending_together_elect_one_parent_test_the_winner_once_and_register_it_once(
    fusion_corpus, tracking, postgres_url
):
    import threading

    from emo.runs.tracker import MemoryTracker
    from emo.studies.storage import make_storage
    from emo.studies.tuning import _finish
    from emo.studies.worker import parent_run

    result = run_experiment(Config(data=str(fusion_corpus), **TINY), progress=False, evaluate_test=False)
    _study_with_one_finished_trial(postgres_url, mlflow.MlflowClient().get_run(result.run_id))
    workers, barrier, created, outcomes = 4, threading.Barrier(4), [], []

    def worker() -> None:
        storage = make_storage(postgres_url)
        study = optuna.load_study(study_name="race", storage=storage)
        barrier.wait()
        parent, _ = parent_run(study, storage, lambda: created.append(1) or f"run-{threading.get_ident()}")
        barrier.wait()
        best = study.best_trial
        outcomes.append(
            (
                parent,
                _finish(
                    study,
                    storage,
                    best,
                    Config(data=str(fusion_corpus), **TINY),
                    MemoryTracker(),
                    metric="rmse",
                    register=True,
                ),
            )
        )

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(outcomes) == workers and len(created) == 1
    assert len({parent for parent, _ in outcomes}) == 1
    assert all(outcome == outcomes[0][1] for _, outcome in outcomes) and outcomes[0][1]["test"]
    client = mlflow.MlflowClient()
    assert len(client.search_model_versions("name = 'emo-fusion4'")) == 1  # one registration per study
    assert len(client.get_metric_history(result.run_id, "test/rmse_valence")) == 1  # the winner was tested once


def test_search_spaces_are_defined_once_and_overridable():
    space = search_space("fusion", {"lr": {"low": 1e-3, "high": 1e-2, "log": True}, "window": None})
    assert "window" not in space and space["lr"]["low"] == 1e-3 and "heads" in space
    params = suggest(
        optuna.trial.FixedTrial(
            {
                "d_model": 64,
                "heads": 4,
                "ff": 128,
                "repeats": 2,
                "dropout": 0.1,
                "lr": 0.002,
                "batch_size": 32,
                "patience": 3,
                "label_delay": 2.0,
            }
        ),
        space,
    )
    assert params["repeats"] == 2 and params["lr"] == 0.002 and params["label_delay"] == 2.0
    with pytest.raises(ConfigError, match="'colour' is not a setting"):
        search_space("fusion", {"colour": {"choices": [1]}})
    with pytest.raises(ConfigError, match="no search space for family 'baseline'"):
        search_space("baseline")


def test_two_workers_share_one_postgres_study_and_run_exactly_the_requested_trials(
    fusion_corpus, tracking, postgres_url, tmp_path
):
    cmd = [
        sys.executable,
        "-m",
        "emo.cli",
        "tune",
        "--data",
        str(fusion_corpus),
        "--trials",
        "5",
        "--storage",
        postgres_url,
        "--study-name",
        "shared",
        "--pruner",
        "none",
        "--window",
        "1",
        "--stride",
        "2",
        "--epochs",
        "2",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--ff",
        "32",
        "--batch-size",
        "64",
    ]
    space = tmp_path / "space.json"
    space.write_text(json.dumps({k: v for k, v in SPACE.items() if v is not None}))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    workers = [
        subprocess.Popen(
            [*cmd, "--space", str(space)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs[0][-2000:] + outputs[1][-2000:]
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 5
    assert all("trial" in o for o in outputs)  # both workers took part
    parent = study.user_attrs["mlflow_parent_run_id"]
    children = mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert mlflow.MlflowClient().get_run(parent).info.status == "FINISHED"  # closed once the study was done
    tracked = sorted(t.number for t in study.trials if "mlflow_run_id" in t.user_attrs)
    assert sorted(children["tags.optuna.trial_number"].astype(int)) == tracked
    assert len(tracked) == 5  # no surplus trial was started
    assert len(mlflow.MlflowClient().search_model_versions("name = 'emo-fusion4'")) == 1  # one per study
    assert sum("registered emo-fusion4 version 1" in o for o in outputs) == 2  # both report the one version


def test_a_claim_is_taken_once_and_a_dead_holders_claim_is_taken_over(tmp_path):
    from emo.studies.claims import claim, once
    from emo.studies.storage import make_storage

    storage = make_storage(f"sqlite:///{tmp_path}/claims.db")
    assert claim(storage, "study:winner") and not claim(storage, "study:winner")
    assert not claim(storage, "study:winner", stale_after=60)  # fresh: still held
    time.sleep(0.3)
    assert claim(storage, "study:winner", stale_after=0.1)  # its holder never finished: taken over
    done = []
    assert once(storage, "study:parent", lambda: done.append(1) or "run-1", lambda: None) == "run-1"
    assert once(storage, "study:parent", lambda: done.append(1), lambda: "run-1", timeout=5) == "run-1"
    assert done == [1]


# --- the storage: outages waited out, passwords never logged -------------------------------------------


@contextlib.contextmanager
def database_down(url: str):
    """The database of `url` refuses connections: new ones are turned away and open ones are cut.
    Yields how many open connections were cut."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        try:
            cut = admin.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()) AS t",
                (name,),
            ).fetchone()[0]
            yield cut
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


def _epochs_reported(url: str) -> int:
    """How many epoch values the study's trials have reported so far (0 while there are no tables)."""
    import psycopg

    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as conn:
            return conn.execute("SELECT count(*) FROM trial_intermediate_values").fetchone()[0]
    except psycopg.Error:
        return 0


def test_a_worker_waits_out_a_short_database_outage_and_the_study_completes(
    fusion_corpus, tracking, postgres_url, caplog
):
    import threading

    hit = {}

    def outage() -> None:  # 4 s without the database, in the middle of the first trial
        deadline = time.time() + 300
        while time.time() < deadline and not _epochs_reported(postgres_url):
            time.sleep(0.2)
        with database_down(postgres_url) as cut:
            hit["cut"] = cut
            time.sleep(4)

    thread = threading.Thread(target=outage)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="emo.studies"):
            result = tune(
                Config(data=str(fusion_corpus), **{**TINY, "epochs": 6, "patience": 6}),
                trials=3,
                storage=postgres_url,
                study_name="outage",
                space=SPACE,
                pruner="none",
                progress=False,
            )
    finally:
        thread.join()
    assert hit["cut"] >= 1  # the worker's connections were cut
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("lost the Optuna storage") for m in messages)  # the outage was felt, and waited out
    assert any(m.startswith("the Optuna storage is back after") for m in messages)
    assert result.test  # the winner was tested once the study was complete


def test_a_longer_outage_ends_the_worker_with_one_line_and_a_restart_retries_its_trial(
    fusion_corpus, tracking, postgres_url, tmp_path
):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({k: v for k, v in SPACE.items() if v is not None}))
    cmd = [
        sys.executable,
        "-m",
        "emo.cli",
        "tune",
        "--data",
        str(fusion_corpus),
        "--trials",
        "2",
        "--storage",
        postgres_url,
        "--study-name",
        "down",
        "--pruner",
        "none",
        "--heartbeat",
        "1",
        "--space",
        str(space),
        "--window",
        "1",
        "--stride",
        "2",
        "--epochs",
        "6",
        "--patience",
        "6",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--ff",
        "32",
        "--batch-size",
        "64",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "EMO_STORAGE_RETRY_SECONDS": "3"}
    worker = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and worker.poll() is None and not _epochs_reported(postgres_url):
            time.sleep(0.2)
        assert worker.poll() is None, worker.communicate()[1][-3000:]
        with database_down(postgres_url):  # down until the worker has given up
            out, err = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 2, err[-3000:]
    assert "Traceback" not in err and "UnboundLocalError" not in err
    last = [line for line in re.split(r"[\r\n]+", err) if line.strip()][-1]
    assert last.startswith(f"error: the Optuna storage {postgres_url} has been unreachable for 3 s"), last
    assert "EMO_STORAGE_RETRY_SECONDS" in last and "start the same command again" in last

    # the database is back: the same command finishes the study, failing and re-running the trial
    # the first worker left RUNNING (its heartbeat went stale)
    again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = optuna.load_study(study_name="down", storage=postgres_url).trials
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and failed[0].number == 0
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 2
    assert any(t.system_attrs.get("failed_trial") == 0 and t.params == failed[0].params for t in trials)


@contextlib.contextmanager
def _down_for(url: str, seconds: float):
    """The database refuses connections for `seconds`, from now, while the block runs."""
    import threading

    started = threading.Event()

    def outage() -> None:
        with database_down(url):
            started.set()
            time.sleep(seconds)

    thread = threading.Thread(target=outage)
    thread.start()
    started.wait(30)
    try:
        yield
    finally:
        thread.join()


def test_a_worker_started_during_an_outage_waits_for_the_database(postgres_url, monkeypatch):
    from emo.studies.claims import claim
    from emo.studies.storage import make_storage

    monkeypatch.setenv("EMO_STORAGE_RETRY_SECONDS", "60")
    with _down_for(postgres_url, 3):
        began = time.monotonic()
        storage = make_storage(postgres_url)  # refused at first: waits instead of ending the worker
        waited = time.monotonic() - began
    assert waited > 2
    assert claim(storage, "study:parent")


def test_once_only_claims_wait_out_an_outage_like_every_other_storage_call(postgres_url, monkeypatch):
    from emo.studies.claims import claim, once
    from emo.studies.storage import make_storage

    monkeypatch.setenv("EMO_STORAGE_RETRY_SECONDS", "60")
    storage = make_storage(postgres_url)
    assert claim(storage, "study:first")  # the claims table exists; its connections are cut below
    with _down_for(postgres_url, 3):
        began = time.monotonic()
        assert claim(storage, "study:winner") and not claim(storage, "study:winner")
        assert once(storage, "study:parent", lambda: "run-1", lambda: None) == "run-1"
        waited = time.monotonic() - began
    assert waited > 2  # the outage was met, and waited out


def test_a_wrong_database_is_refused_at_once_not_waited_for(postgres_url, monkeypatch):
    from emo.studies.storage import make_storage

    monkeypatch.setenv("EMO_STORAGE_RETRY_SECONDS", "60")
    began = time.monotonic()
    with pytest.raises(ConfigError, match="does not exist"):
        make_storage(postgres_url.rsplit("/", 1)[0] + "/no_such_database")
    assert time.monotonic() - began < 10


def test_a_bad_retry_setting_is_refused_with_its_name(monkeypatch, tmp_path):
    from emo.studies.storage import make_storage

    monkeypatch.setenv("EMO_STORAGE_RETRY_SECONDS", "two minutes")
    with pytest.raises(ConfigError, match="EMO_STORAGE_RETRY_SECONDS='two minutes'"):
        make_storage(f"sqlite:///{tmp_path}/x.db")


PASSWORD = "Pw0rd-9f3"  # local PostgreSQL trusts its clients: the password is carried, never checked
FORMS = {  # the password in the user part, as a query parameter, and a query holding `@`
    "user part": "postgresql+psycopg://postgres:{pw}@127.0.0.1:5432/{db}",
    "query": "postgresql+psycopg://postgres@127.0.0.1:5432/{db}?password={pw}",
    "@ in the query": "postgresql+psycopg://postgres:{pw}@127.0.0.1:5432/{db}?application_name=emo@test",
}


def test_a_storage_url_is_shown_without_its_password_in_every_form():
    from emo.dburl import has_password
    from emo.studies.storage import masked_url

    shown = {form: masked_url(url.format(pw=PASSWORD, db="optuna")) for form, url in FORMS.items()}
    assert shown == {
        "user part": "postgresql+psycopg://postgres:***@127.0.0.1:5432/optuna",
        "query": "postgresql+psycopg://postgres@127.0.0.1:5432/optuna?password=***",
        "@ in the query": "postgresql+psycopg://postgres:***@127.0.0.1:5432/optuna?application_name=emo%40test",
    }
    assert all(has_password(url) for url in FORMS.values())
    assert not has_password("postgresql+psycopg://postgres@127.0.0.1/optuna?application_name=a@b")
    encoded = "postgresql+psycopg://u:p%40ss%3Aw@h/db?sslpassword=x"  # an encoded `@` in the password
    assert masked_url(encoded) == "postgresql+psycopg://u:***@h/db?sslpassword=***"


def test_under_mlflow_run_a_storage_password_comes_from_emo_storage_and_is_never_logged(
    fusion_corpus, tracking, postgres_url, monkeypatch
):
    from sqlalchemy.engine import make_url

    db = make_url(postgres_url).database
    # what `mlflow run . -e tune` does first: a run with every -P value logged, its id exported
    with mlflow.start_run() as run:
        mlflow.log_params({"storage": "auto", "trials": "1"})
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    base = Config(data=str(fusion_corpus), **{**TINY, "epochs": 1})
    for form, url in FORMS.items():  # -P storage=URL-with-password: MLflow has logged and printed it already
        with pytest.raises(ConfigError) as refused:
            tune(base, trials=1, storage=url.format(pw=PASSWORD, db=db), study_name="env", space=SPACE, progress=False)
        message = str(refused.value)
        assert PASSWORD not in message and "EMO_STORAGE" in message and run.info.run_id in message, form
    assert not mlflow.search_runs(search_all_experiments=True, filter_string="tags.emo.study = 'env'").shape[0]

    # the same URLs from the environment, where neither MLflow nor `ps` sees them
    for i, (form, url) in enumerate(FORMS.items()):
        monkeypatch.setenv("EMO_STORAGE", url.format(pw=PASSWORD, db=db))
        result = tune(base, trials=i + 1, storage=None, study_name="env", space=SPACE, pruner="none", progress=False)
        assert result.parent_run_id == run.info.run_id and len(result.study.trials) == i + 1, form
    logged = mlflow.MlflowClient().get_run(run.info.run_id).data
    everything = json.dumps({"params": logged.params, "tags": logged.tags, "metrics": logged.metrics})
    assert PASSWORD not in everything
    assert logged.params["storage"] == "auto"
    assert (
        logged.tags["emo.storage"] == f"postgresql+psycopg://postgres:***@127.0.0.1:5432/{db}"
        "?application_name=emo%40test"
    )  # the last worker's URL, whole


def test_a_sigterm_mid_trial_ends_the_worker_with_143_and_its_run_says_killed(fusion_corpus, tracking, tmp_path):
    import signal

    storage = f"sqlite:///{tmp_path}/sigterm.db"
    cmd = [
        sys.executable,
        "-m",
        "emo.cli",
        "tune",
        "--data",
        str(fusion_corpus),
        "--trials",
        "1",
        "--epochs",
        "500",
        "--patience",
        "500",
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
        "--storage",
        storage,
        "--study-name",
        "stopped",
        "--pruner",
        "none",
        "--space",
        str(tmp_path / "s.json"),
    ]
    (tmp_path / "s.json").write_text(
        json.dumps(
            {
                k: None
                for k in (
                    "window",
                    "patience",
                    "batch_size",
                    "label_delay",
                    "d_model",
                    "heads",
                    "ff",
                    "repeats",
                    "dropout",
                    "lr",
                )
            }
        )
    )
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, run_id = time.monotonic() + 120, None
    while run_id is None and time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            trials = optuna.load_study(study_name="stopped", storage=storage).get_trials(deepcopy=False)
        except KeyError:
            continue
        run_id = next((t.user_attrs["mlflow_run_id"] for t in trials if "mlflow_run_id" in t.user_attrs), None)
    assert run_id, "the trial never started"
    time.sleep(3)  # inside the training loop
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["emo.trial_state"] == "KILLED"


def test_a_trial_error_that_says_does_not_exist_is_not_taken_for_a_lost_storage():
    # the storage's permanent refusals ("database … does not exist") are recognised by their text; a
    # trial's own error with the same words must come out as itself
    from emo.studies.storage import storage_errors

    with pytest.raises(FileNotFoundError, match="does not exist"), storage_errors():
        raise FileNotFoundError("data/afew/video.parquet does not exist")
