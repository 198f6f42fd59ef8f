"""Every single-modality family trains, beats the mean predictor, and is tracked completely in MLflow."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emo.cli import main
from emo.core.config import Config
from emo.core.errors import DataError
from emo.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(epochs=6, patience=3, batch_size=64, seed=0)


def quick(corpus, family, **kw) -> Config:
    return Config(family=family, data=str(corpus), **{**FAST, **kw})


# dev RMSE must be below margin × the mean predictor's; the face carries mostly valence and the
# voice mostly arousal (by design of the synthetic corpus), so the weak side gets a looser margin
@pytest.mark.parametrize(
    "family, kw, margins",
    [
        ("ffnn", {}, {"valence": 0.6, "arousal": 0.9}),
        ("audio", {"window": 2}, {"arousal": 0.85}),
        ("video", {"window": 2, "pooling": "avg"}, {"valence": 0.5, "arousal": 0.9}),
        ("video", {"window": 1, "pooling": "max"}, {"valence": 0.6, "arousal": 0.9}),
        ("video", {"window": 2, "pooling": "conv1d"}, {"valence": 0.6, "arousal": 0.95}),
    ],
)
def test_each_family_beats_the_training_mean_on_dev(corpus, family, kw, margins):
    result = run_experiment(quick(corpus, family, **kw), track=False, progress=False)
    for target, margin in margins.items():
        ours = result.dev[f"dev/rmse_{target}"]
        mean = result.mean_predictor_dev[f"dev/rmse_{target}"]
        assert ours < margin * mean, f"{family} {target}: {ours:.3f} vs mean predictor {mean:.3f}"
    assert set(result.test) >= {"test/rmse_valence", "test/ccc_arousal", "test/mae_valence", "test/r_arousal"}


def test_baseline_fits_three_algorithms_and_the_best_beats_the_mean(corpus):
    # svr_exact_max 0: the linear-time SVR (this corpus is small enough for the exact one; see below)
    result = run_experiment(quick(corpus, "baseline", svr_exact_max=0), track=False)
    assert sorted(result.children) == ["bayesian_ridge", "svr", "tree"]
    ridge = result.children["bayesian_ridge"].dev
    assert ridge["dev/rmse_valence"] < 0.6 * result.mean_predictor_dev["dev/rmse_valence"]
    # the tree overfits, as in the thesis: worse than Bayesian Ridge
    assert result.children["tree"].dev["dev/rmse_valence"] > ridge["dev/rmse_valence"]


def _svr_problem(n_train: int, n_dev: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x_train, x_dev = rng.normal(size=(n_train, 3)), rng.normal(size=(n_dev, 3))
    f = lambda x: np.c_[np.tanh(x[:, 0] * x[:, 1]), 0.3 * x[:, 2]]  # noqa: E731  one nonlinear, one linear target
    return x_train, f(x_train) + rng.normal(0, 0.05, (n_train, 2)), x_dev, f(x_dev)


def test_svr_chooses_its_settings_on_dev_after_fitting_on_train():
    from sklearn.svm import SVR

    from emo.core.metrics import rmse
    from emo.models.baselines import SVR_GRID, fit_baseline

    x_train, y_train, x_dev, y_dev = _svr_problem(80, 40)
    estimators, notes = fit_baseline("svr", x_train, y_train, x_dev, y_dev, svr_exact_max=80)
    assert notes["svr_method"] == "exact"
    for j in range(2):
        grid = [{"C": c, "kernel": k} for c in SVR_GRID["C"] for k in SVR_GRID["kernel"]]
        fits = [SVR(**p).fit(x_train, y_train[:, j]) for p in grid]
        on_dev = [rmse(y_dev[:, j], np.clip(m.predict(x_dev), -1, 1)) for m in fits]
        assert notes[f"svr_best_{j}"] == grid[int(np.argmin(on_dev))]
        # the model is that setting's fit on train alone
        assert np.allclose(estimators[j].predict(x_dev), fits[int(np.argmin(on_dev))].predict(x_dev))


def test_above_svr_exact_max_the_linear_time_svr_scores_within_5_percent_of_the_exact_one():
    from emo.core.metrics import rmse
    from emo.models.baselines import fit_baseline, predict_baseline

    x_train, y_train, x_dev, y_dev = _svr_problem(1500, 500)
    _, _, x_test, y_test = _svr_problem(10, 500, seed=1)
    scores = {}
    for limit in (1500, 1499):  # exactly at the limit: exact; one frame over: linear time
        estimators, notes = fit_baseline("svr", x_train, y_train, x_dev, y_dev, svr_exact_max=limit)
        pred = predict_baseline(estimators, x_test)
        scores[notes["svr_method"]] = [rmse(y_test[:, j], pred[:, j]) for j in range(2)]
    exact, fast = scores["exact"], scores.pop(next(k for k in scores if k != "exact"))
    assert all(f <= 1.05 * e for f, e in zip(fast, exact, strict=True)), (fast, exact)
    # and it learnt the nonlinear target: far better than predicting its mean
    assert fast[0] < 0.5 * np.std(y_test[:, 0])


def test_same_seed_same_numbers(corpus):
    a = run_experiment(quick(corpus, "video", window=1, epochs=2), track=False, progress=False)
    b = run_experiment(quick(corpus, "video", window=1, epochs=2), track=False, progress=False)
    c = run_experiment(quick(corpus, "video", window=1, epochs=2, seed=1), track=False, progress=False)
    assert a.dev == b.dev and a.test == b.test
    assert a.dev != c.dev


@pytest.fixture(scope="module")
def scrambled_test_set(corpus, tmp_path_factory):
    """The corpus with every test label negated and every test feature (video and audio) replaced by noise."""
    other = tmp_path_factory.mktemp("scrambled") / "sewa"
    shutil.copytree(corpus, other)
    if not (corpus / "split.json").exists():
        run_experiment(quick(corpus, "ffnn", epochs=1), track=False, progress=False)
        shutil.copy(corpus / "split.json", other / "split.json")
    test = set(json.loads((corpus / "split.json").read_text())["test"])
    rng = np.random.default_rng(0)
    video = pd.read_csv(other / "video.csv")
    rows = video["path"].str.split("/").str[1].isin(test)
    video.loc[rows, ["valence", "arousal"]] *= -1
    feats = [c for c in video.columns if c.startswith("emb_")]
    video.loc[rows, feats] = rng.normal(0, 10, (rows.sum(), len(feats)))
    video.to_csv(other / "video.csv", index=False)
    for path in other.glob("audio_*s.csv"):
        audio = pd.read_csv(path)
        rows = audio["filename"].str.removesuffix(".wav").isin(test)
        cols = [c for c in audio.columns if c not in ("filename", "timestamp")]
        audio.loc[rows, cols] = rng.normal(0, 10, (rows.sum(), len(cols)))
        audio.to_csv(path, index=False)
    return other


@pytest.mark.parametrize(
    "family, kw",
    [
        ("ffnn", {}),
        ("video", {"window": 1}),
        ("fusion", {"window": 1, "d_model": 16, "heads": 2, "ff": 32, "repeats": 1}),
    ],
)
def test_the_test_set_never_influences_training_or_model_selection(corpus, scrambled_test_set, family, kw):
    a = run_experiment(quick(corpus, family, epochs=3, **kw), track=False, progress=False)
    b = run_experiment(quick(scrambled_test_set, family, epochs=3, **kw), track=False, progress=False)
    curves = lambda r: [{k: v for k, v in h.items() if k != "train/seconds"} for h in r.history]  # noqa: E731
    assert curves(a) == curves(b) and a.best_epoch == b.best_epoch and a.dev == b.dev
    assert a.test != b.test  # the test set was read, once, after training


def test_early_stopping_restores_the_best_epochs_weights(corpus):
    result = run_experiment(quick(corpus, "ffnn", epochs=40, patience=2, lr=0.05), track=False, progress=False)
    assert result.best_epoch < len(result.history)  # it stopped after epochs worse than the best
    best = result.history[result.best_epoch - 1]
    assert result.dev["dev/rmse_valence"] == pytest.approx(best["dev/rmse_valence"], rel=1e-6)
    assert result.dev["dev/ccc_arousal"] == pytest.approx(best["dev/ccc_arousal"], rel=1e-6)
    assert result.history[-1]["dev/loss"] > best["dev/loss"]


def test_resuming_an_early_stopped_run_with_more_patience_trains_on(corpus, tracking):
    first = run_experiment(quick(corpus, "ffnn", epochs=40, patience=1, lr=0.05), progress=False)
    stopped = len(first.history)
    assert stopped < 40
    result = CliRunner().invoke(
        main, ["train", "ffnn", "--resume", first.run_id, "--patience", "20", "--epochs", str(stopped + 3)]
    )
    assert result.exit_code == 0, result.output
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(first.run_id, "dev/loss")]
    assert steps == list(range(1, stopped + 4))


def test_a_tracked_run_holds_params_epoch_curves_checkpoint_test_metrics_plots_and_a_model(corpus, tracking):
    result = run_experiment(quick(corpus, "video", window=2, epochs=3, patience=5), progress=False)
    client = mlflow.MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert p["family"] == "video" and p["pooling"] == "avg" and p["hidden"] == "128" and p["lr"] == "0.001"
    assert p["data_synthetic"] == "True" and len(p["data_fingerprint"]) == 12 and len(p["split_hash"]) == 12
    assert (
        p["fps"] == "auto" and p["data_fps"] == "5.0" and p["window"] == "2" and p["seed"] == "0" and "emo_version" in p
    )
    history = client.get_metric_history(result.run_id, "dev/loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert len(client.get_metric_history(result.run_id, "dev/ccc_arousal")) == 3
    m = run.data.metrics
    assert m["test/rmse_valence"] == pytest.approx(result.test["test/rmse_valence"])
    assert m["best_dev/rmse_mean"] == pytest.approx(result.objective)
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "checkpoints")}
    assert artifacts == {"checkpoints/checkpoint.pt"}
    # the plots at the top level, where MLflow's run comparison finds them
    plots = {a.path for a in client.list_artifacts(result.run_id) if a.path.endswith(".png")}
    assert plots == {"dev_traces.png", "dev_predicted_vs_true.png", "learning_curves.png"}
    model = mlflow.pyfunc.load_model(result.model_uri)
    logged = mlflow.get_logged_model(model.metadata.model_id)
    assert logged.name == "video-2s-seed0" and run.info.run_name == "video 2s seed0"
    assert "video-2s-seed0" in logged.tags["mlflow.note.content"]
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.name == "emo-video"
    view = json.loads(json.loads(experiment.tags["mlflow.sharedViewState.emo"])["state"])  # the UI's saved view
    assert view["selectedColumns"][1:3] == ["metrics.`best_dev/rmse_mean`", "metrics.`best_dev/rmse_valence`"]
    assert view["orderByKey"] == "metrics.`best_dev/rmse_mean`" and view["orderByAsc"]
    assert {"emo.window": "2", "emo.family": "video", "emo.seed": "0"}.items() <= run.data.tags.items()
    window = np.zeros((3, 10, 16), np.float32)
    pred = model.predict({"video": window})
    assert list(pred.columns) == ["valence", "arousal"] and len(pred) == 3
    assert np.all(np.abs(pred.to_numpy()) <= 1)


def test_resume_continues_from_the_checkpoint_epoch_exactly(corpus, tracking):
    # the video model has dropout: resuming must restore the random state too
    first = run_experiment(quick(corpus, "video", window=1, dropout=0.3, epochs=2, patience=10), progress=False)
    resumed = run_experiment(
        quick(corpus, "video", window=1, dropout=0.3, epochs=4, patience=10), resume=first.run_id, progress=False
    )
    assert resumed.run_id == first.run_id
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(first.run_id, "dev/loss")]
    assert steps == [1, 2, 3, 4]
    straight = run_experiment(
        quick(corpus, "video", window=1, dropout=0.3, epochs=4, patience=10), track=False, progress=False
    )
    assert [h["dev/loss"] for h in straight.history] == pytest.approx(
        [h["dev/loss"] for h in resumed.history], rel=1e-6
    )
    run = mlflow.MlflowClient().get_run(first.run_id)
    assert run.data.params["epochs"] == "2" and run.data.params["resumed_epochs"] == "4"


def test_resume_with_other_settings_is_refused_before_the_run_is_touched(corpus, tracking):
    first = run_experiment(quick(corpus, "ffnn", epochs=1), progress=False)
    result = CliRunner().invoke(main, ["train", "ffnn", "--resume", first.run_id, "--hidden", "7"])
    assert result.exit_code == 2 and "hidden default -> 7" in result.output, result.output
    assert mlflow.MlflowClient().get_run(first.run_id).info.status == "FINISHED"
    again = CliRunner().invoke(main, ["train", "ffnn", "--resume", first.run_id, "--epochs", "2"])
    assert again.exit_code == 0, again.output


def test_a_failed_run_is_marked_failed_with_the_reason(corpus, tracking):
    def breaks(state):
        raise RuntimeError(f"disk full after epoch {state.epoch}")

    with pytest.raises(RuntimeError):
        run_experiment(quick(corpus, "ffnn", epochs=2), on_epoch=breaks, progress=False)
    run = mlflow.search_runs(order_by=["start_time DESC"], max_results=1).iloc[0]
    assert run["status"] == "FAILED"
    assert "disk full after epoch 1" in run["tags.failure_reason"]


def test_a_data_error_under_mlflow_run_fails_the_run_it_was_given(corpus, tracking, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(corpus, broken)
    (broken / "audio_2s.csv").write_text("filename,timestamp,f\nS0000.wav,0,text\n")
    given = mlflow.MlflowClient().create_run("0").info.run_id  # what `mlflow run` makes before emo starts
    monkeypatch.setenv("MLFLOW_RUN_ID", given)
    with pytest.raises(DataError):
        run_experiment(quick(broken, "audio", window=2), progress=False)
    run = mlflow.MlflowClient().get_run(given)
    assert run.info.status == "FAILED" and "audio_2s.csv" in run.data.tags["failure_reason"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["video", "--pooling", "median"], "'median' is not one of avg, max, conv1d"),
        (["video", "--window", "0"], "window must be a positive number of seconds"),
        (["audio", "--window", "7"], "window must be 1, 2, 3 or 4"),
        (["fusion", "--method", "5"], "'5' is not one of 1, 2, 3, 4"),
        (["fusion", "--dropout", "1.5"], "dropout must be in [0, 1)"),
    ],
)
def test_parameter_errors_stop_before_any_training(args, message, tracking):
    result = CliRunner().invoke(main, ["train", *args, "--data", "nowhere"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert mlflow.search_runs(search_all_experiments=True).empty


@pytest.mark.parametrize(
    "args", [["video", "--pooling", "median"], ["fusion", "--dropout", "2"], ["fusion", "--epochs", "many"]]
)
def test_a_bad_option_is_refused_before_torch_is_loaded(args):
    code = (
        "import sys\nfrom emo.cli import main\ntry:\n    main.main(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n    print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')"
    )
    out = subprocess.run([sys.executable, "-c", code, "train", *args], capture_output=True, text=True)
    assert "torch not loaded" in out.stdout, out.stdout + out.stderr


def test_audio_on_a_video_only_dataset_says_it_needs_audio_tables(tmp_path):
    from emo.data.synth import SynthConfig, synthesize

    afew = synthesize(tmp_path / "afew", SynthConfig(kind="afew", videos=4, duration_s=10, dim=4))
    result = CliRunner().invoke(main, ["train", "audio", "--data", str(afew), "--window", "1", "--no-track"])
    assert result.exit_code == 2 and "no audio tables" in result.output


def test_mlflow_run_of_an_entry_point_completes_one_run(corpus, tracking, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(ROOT),
            "-e",
            "video",
            "-P",
            f"data={corpus}",
            "-P",
            "window=1",
            "-P",
            "pooling=max",
            "-P",
            "epochs=2",
            "--env-manager",
            "local",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 1  # the script reused the run `mlflow run` created
    run = runs.iloc[0]
    assert run["status"] == "FINISHED" and run["params.pooling"] == "max" and run["params.window"] == "1"
    assert run["metrics.test/rmse_arousal"] > 0 and run["tags.mlflow.runName"] == "video 1s max seed0"
