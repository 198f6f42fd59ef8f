"""Runs that are attacked, interrupted or fed odd input: checkpoints are data only, a cut-short checkpoint
does not block a resume, a new sqlite store survives concurrent first use, and run states tell the truth."""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emo.cli import main
from emo.core.config import Config
from emo.core.errors import EmoError, TrackingError
from emo.experiment import run_experiment
from emo.runs.checkpoints import load_checkpoint, local_checkpoint
from emo.runs.lifecycle import tracked_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A very small corpus: these tests are about runs, not about learning."""
    from emo.data.synth import SynthConfig, synthesize

    return synthesize(
        tmp_path_factory.mktemp("tiny") / "sewa", SynthConfig(videos=6, duration_s=10.0, dim=4, audio_dim=3, seed=3)
    )


def quick(corpus, family="ffnn", **kw) -> Config:
    return Config(family=family, data=str(corpus), **{"epochs": 1, "patience": 5, "seed": 0, **kw})


def cli_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}


class _RunsCode:
    """What an attacker would put in a checkpoint: unpickling it runs a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# --- item 1: checkpoints are read as data only ------------------------------------------------------


@pytest.mark.parametrize("where", ["server", "local"])
def test_a_checkpoint_that_would_run_code_is_refused(tracking, tmp_path, where):
    marker = tmp_path / "pwned"
    with tracked_run(run_name="victim") as tracker:
        run_id = tracker.run_id
    evil = tmp_path / "upload" / "checkpoint.pt"
    evil.parent.mkdir()
    torch.save({"model": _RunsCode(marker), "config": {"family": "ffnn"}}, evil)
    if where == "server":
        mlflow.MlflowClient().log_artifact(run_id, str(evil), "checkpoints")
    else:
        local = local_checkpoint(run_id)
        local.parent.mkdir(parents=True)
        local.write_bytes(evil.read_bytes())
    with pytest.raises(EmoError, match="not a plain emo checkpoint") as err:
        load_checkpoint(run_id)
    assert run_id in str(err.value)
    assert not marker.exists()
    result = CliRunner().invoke(main, ["train", "ffnn", "--resume", run_id])
    assert result.exit_code == 2 and "not a plain emo checkpoint" in result.output, result.output
    assert not marker.exists()


def test_a_checkpoint_holds_only_what_a_data_only_load_accepts(tmp_path):
    from emo.trainer import TrainState, checkpoint

    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(net.parameters())
    state = TrainState(
        epoch=1,
        best_loss=np.float64(0.5),
        best_epoch=1,
        history=[{"epoch": 1, "dev/loss": np.float64(0.5), "improved": np.bool_(True)}],
    )
    body = checkpoint(
        state,
        net,
        optimizer,
        torch.Generator(),
        config={"extra": {"w": np.float32(2.0)}},
        dims={"input_dim": np.int64(2)},
        model_name="ffnn",
    )
    path = tmp_path / "checkpoint.pt"
    torch.save(body, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["state"]["history"] == [{"epoch": 1, "dev/loss": 0.5, "improved": True}]
    assert loaded["dims"] == {"input_dim": 2} and loaded["config"]["extra"] == {"w": 2.0}
    assert torch.equal(loaded["model"]["weight"], net.state_dict()["weight"])


# --- item 2: a checkpoint cut short ---------------------------------------------------------------------


def test_a_checkpoint_write_cut_short_leaves_the_previous_one_whole(tracking):
    real_save = torch.save

    def dies_halfway(body, f):
        real_save(body, f)
        Path(f).write_bytes(Path(f).read_bytes()[:100])
        raise KeyboardInterrupt("killed while writing")

    with pytest.raises(KeyboardInterrupt):
        with tracked_run(run_name="cut") as tracker:
            tracker.log_checkpoint({"state": {"epoch": 1}})
            torch.save = dies_halfway
            try:
                tracker.log_checkpoint({"state": {"epoch": 2}})
            finally:
                torch.save = real_save
    local = local_checkpoint(tracker.run_id)
    assert torch.load(local, weights_only=True) == {"state": {"epoch": 1}}
    assert [p.name for p in local.parent.iterdir()] == [local.name]  # no temp file left behind


def test_a_truncated_local_checkpoint_falls_back_to_the_servers_copy(tiny, tracking, caplog):
    first = run_experiment(quick(tiny), progress=False)
    local = local_checkpoint(first.run_id)
    assert not local.parent.exists()  # a finished run's local copy is removed: the store holds its checkpoint
    # a copy cut short, as a training stopped while writing it leaves one
    logged = Path(mlflow.artifacts.download_artifacts(run_id=first.run_id, artifact_path="checkpoints/checkpoint.pt"))
    local.parent.mkdir(parents=True)
    local.write_bytes(logged.read_bytes()[: logged.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="emo"):
        resumed = run_experiment(quick(tiny, epochs=2), resume=first.run_id, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert any(
        str(local) in r.getMessage() and "using the checkpoint of run" in r.getMessage() for r in caplog.records
    ), caplog.text
    assert mlflow.MlflowClient().get_run(first.run_id).info.status == "FINISHED"


# --- item 3: a new sqlite store used by several processes at once ----------------------------------------


def test_three_trainings_started_at_once_in_a_new_folder_share_the_default_store(tiny, tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "emo.cli", "train", "ffnn", "--data", str(tiny), "--epochs", "1"],
            cwd=folder,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("emo-ffnn").experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}


def test_a_broken_sqlite_store_is_named_as_a_local_store(tmp_path, monkeypatch):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    try:
        with pytest.raises(TrackingError) as err:
            with tracked_run(run_name="x"):
                pass
    finally:
        mlflow.set_tracking_uri(None)
    assert f"sqlite store at {db}" in str(err.value)
    assert "server" not in str(err.value)


# --- item 4: run states ------------------------------------------------------------------------------------


def test_a_data_error_before_training_leaves_no_run_behind(tiny, tracking, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    (broken / "audio_2s.csv").write_text("filename,timestamp,f\nS0000.wav,0,text\n")
    result = CliRunner().invoke(main, ["train", "audio", "--data", str(broken), "--window", "2", "--epochs", "1"])
    assert result.exit_code == 2 and "audio_2s.csv" in result.output, result.output
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_a_resumed_run_that_finishes_loses_its_old_failure_reason(tiny, tracking):
    run_id = []

    def interrupt(state):
        run_id.append(mlflow.active_run().info.run_id)
        raise KeyboardInterrupt("stopped by hand")

    with pytest.raises(KeyboardInterrupt):
        run_experiment(quick(tiny, epochs=3), on_epoch=interrupt, progress=False)
    run = mlflow.MlflowClient().get_run(run_id[0])
    assert run.info.status == "KILLED" and "stopped by hand" in run.data.tags["failure_reason"]
    run_experiment(quick(tiny, epochs=2), resume=run_id[0], progress=False)
    run = mlflow.MlflowClient().get_run(run_id[0])
    assert run.info.status == "FINISHED" and "failure_reason" not in run.data.tags


def test_sigterm_and_sigint_end_a_training_with_128_plus_the_signal_and_a_killed_run(tiny, tracking, tmp_path):
    import shutil

    procs, stores, checkpoints = {}, {}, {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        # a store and a checkpoint folder each: the test is about signals, not about two writers on one sqlite file
        folder = tmp_path / sig.name
        folder.mkdir()
        shutil.copy(tmp_path / "mlflow.db", folder / "mlflow.db")
        stores[sig], checkpoints[sig] = f"sqlite:///{folder / 'mlflow.db'}", folder / "ck"
        env = cli_env(MLFLOW_TRACKING_URI=stores[sig], EMO_CHECKPOINT_DIR=str(checkpoints[sig]))
        procs[sig] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emo.cli",
                "train",
                "ffnn",
                "--data",
                str(tiny),
                "--epochs",
                "100000",
                "--patience",
                "100000",
            ],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + 240
    pending = dict(procs)
    while pending and time.monotonic() < deadline:
        for sig, proc in list(pending.items()):
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            if any(checkpoints[sig].glob("*/checkpoint.pt")):  # written once the first epoch is logged
                proc.send_signal(sig)
                del pending[sig]
        time.sleep(0.2)
    for proc in pending.values():
        proc.kill()
    assert not pending, "no epoch was logged in time"
    for sig, proc in procs.items():
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode == 128 + sig, (sig.name, proc.returncode, out[-3000:])
        assert f"interrupted by {sig.name}" in out
        client = mlflow.MlflowClient(stores[sig])
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert len(runs) == 1 and runs[0].info.status == "KILLED", (sig.name, out[-2500:])
