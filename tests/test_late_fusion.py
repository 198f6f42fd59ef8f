"""Late fusion of a video and an audio sequence run: weights fitted on dev only, the mix scored like
any run, and a logged model that holds both networks."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from emo.late_fusion import fuse
from emo.models.late import fit_weights, mix

from servers import post, private_store, served_model


def predictions(n: int, truth: np.ndarray, noise: float, seed: int) -> pd.DataFrame:
    """A run's prediction table for `n` frames: the truth plus noise of scale `noise`."""
    rng = np.random.default_rng(seed)
    pred = np.clip(truth + rng.normal(0, noise, truth.shape), -1, 1)
    return pd.DataFrame(
        {
            "video_id": np.repeat(["a", "b", "c", "d"], n // 4),
            "start": np.tile(np.arange(n // 4) / 5.0, 4),
            "end": np.tile(np.arange(n // 4) / 5.0 + 0.2, 4),
            "valence": pred[:, 0],
            "arousal": pred[:, 1],
            "true_valence": truth[:, 0],
            "true_arousal": truth[:, 1],
        }
    )


def tables(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate(("dev", "test")):
        truth = rng.uniform(-0.8, 0.8, (40, 2))
        # video knows valence well and arousal badly; audio the other way round
        video = predictions(40, truth, 0.0, 10 + i).assign(
            valence=lambda d: d["true_valence"] + rng.normal(0, 0.05, 40),
            arousal=lambda d: d["true_arousal"] + rng.normal(0, 0.4, 40),
        )
        audio = predictions(40, truth, 0.0, 20 + i).assign(
            valence=lambda d: d["true_valence"] + rng.normal(0, 0.4, 40),
            arousal=lambda d: d["true_arousal"] + rng.normal(0, 0.05, 40),
        )
        out[name] = (video, audio)
    return out


def test_the_weight_is_the_best_convex_mix_on_dev_and_never_worse_than_either_model():
    t = tables()
    video, audio = t["dev"]
    v, a = video[["valence", "arousal"]].to_numpy(), audio[["valence", "arousal"]].to_numpy()
    y = video[["true_valence", "true_arousal"]].to_numpy()
    w = fit_weights(v, a, y)
    grid = np.linspace(0, 1, 10001)
    for j in range(2):  # a brute-force search over the mixes, apart from emo's closed form
        errors = [((g * v[:, j] + (1 - g) * a[:, j] - y[:, j]) ** 2).mean() for g in grid]
        assert abs(w[j] - grid[int(np.argmin(errors))]) < 2e-4
    assert w[0] > 0.8 and w[1] < 0.2  # valence mostly from video, arousal mostly from audio
    fused = np.sqrt(((mix(v, a, w) - y) ** 2).mean(axis=0))
    assert (fused <= np.sqrt(((v - y) ** 2).mean(axis=0))).all() and (
        fused <= np.sqrt(((a - y) ** 2).mean(axis=0))
    ).all()
    # a mix outside [0, 1] is never chosen: identical models get 0.5, opposite ones a clipped weight
    assert fit_weights(v, v, y).tolist() == [0.5, 0.5]
    assert ((0 <= fit_weights(v, -v, y)) & (fit_weights(v, -v, y) <= 1)).all()


def test_late_fusion_weights_never_see_test_data():
    t = tables()
    weights, fused, metrics = fuse(t)
    flipped = {
        **t,
        "test": tuple(d.assign(true_valence=-d["true_valence"], true_arousal=-d["true_arousal"]) for d in t["test"]),
    }
    weights2, fused2, metrics2 = fuse(flipped)
    assert np.array_equal(weights, weights2)
    assert np.array_equal(fused["test"][["valence", "arousal"]], fused2["test"][["valence", "arousal"]])
    assert metrics["dev"] == metrics2["dev"] and metrics["test"] != metrics2["test"]
    # and the test predictions are the mix of the two models' own, with the dev weights
    v, a = (d[["valence", "arousal"]].to_numpy() for d in t["test"])
    assert np.allclose(fused["test"][["valence", "arousal"]], weights * v + (1 - weights) * a)


def test_emo_train_late_logs_a_model_that_predicts_as_the_fused_run_scored(corpus, _migrated_store, tmp_path):
    import mlflow

    from emo.cli import main
    from emo.core.config import Config
    from emo.experiment import run_experiment
    from emo.predict import predict_split
    from emo.runs.queries import run_table

    common = dict(family="seq", data=str(corpus), segment=6.0, hop=3.0, epochs=2, seed=0, threads=1)
    with private_store(tmp_path, _migrated_store):
        video = run_experiment(Config(modality="video", **common), progress=False)
        audio = run_experiment(Config(modality="audio", **common), progress=False)
        result = CliRunner().invoke(main, ["train", "late", "--video-run", video.run_id, "--audio-run", audio.run_id])
        assert result.exit_code == 0, result.output
        (run,) = mlflow.search_runs(
            search_all_experiments=True, filter_string="tags.`emo.family` = 'late'", output_format="list"
        )  # (before the second late run below)
        logged = run_table(run.info.run_id, "predictions/test.parquet")
        model = mlflow.pyfunc.load_model(run.data.tags["emo.model_uri"])
        assert 0 <= float(run.data.params["weight_video_valence"]) <= 1
        assert "test_2s_last/rmse_valence" in run.data.metrics and "best_dev/rmse_mean" in run.data.metrics
        # the best (here: the only) seq runs on video and on audio of an experiment, found by emo
        chosen = CliRunner().invoke(main, ["train", "late", "--from-experiment", "emo-seq", "--run-name", "found"])
        assert chosen.exit_code == 0, chosen.output
        (found,) = mlflow.search_runs(
            search_all_experiments=True, filter_string="attributes.run_name = 'found'", output_format="list"
        )
        assert (found.data.params["video_run"], found.data.params["audio_run"]) == (video.run_id, audio.run_id)
        # served for real: a row per step of each segment, mixed from both networks
        dims = model.metadata.get_input_schema().inputs
        shapes = {spec.name: spec.shape for spec in dims}
        frames = shapes["video"][1]
        body = {
            "inputs": {
                "video": np.zeros((2, frames, shapes["video"][2])).tolist(),
                "audio": np.zeros((2, frames, shapes["audio"][2])).tolist(),
                "video_mask": [[True] * frames, [True] * (frames - 2) + [False] * 2],
            }
        }
        env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()}
        with served_model(run.data.tags["emo.model_uri"], env, tmp_path / "serve.log") as port:
            status, answer = post(port, body)
        assert status == 200, answer
        assert len(answer["predictions"]) == 2 * frames
        local = model.predict(
            {k: np.asarray(v, bool if k == "video_mask" else np.float32) for k, v in body["inputs"].items()}
        )
        assert np.allclose([[p["valence"], p["arousal"]] for p in answer["predictions"]], local.to_numpy(), atol=1e-6)
        # a seq run on video is not an audio run
        wrong = CliRunner().invoke(main, ["train", "late", "--video-run", video.run_id, "--audio-run", video.run_id])
        assert wrong.exit_code == 2 and "seq run on audio" in wrong.output and "Traceback" not in wrong.output
    table, metrics = predict_split(model, str(corpus), split="test")
    assert len(table) == len(logged) and np.allclose(
        table[["valence", "arousal"]], logged[["valence", "arousal"]], atol=1e-5
    )
    assert metrics["test/rmse_valence"] == pytest.approx(run.data.metrics["test/rmse_valence"], abs=1e-5)


def test_windowed_late_fusion_mixes_the_video_runs_windows_with_the_mean_of_the_audio_rows_a_fusion_model_reads(
    corpus, _migrated_store, tmp_path
):
    import mlflow

    from emo.cli import main
    from emo.core.config import Config
    from emo.experiment import run_experiment
    from emo.predict import predict_split
    from emo.runs.queries import run_table

    common = dict(data=str(corpus), window=1.0, epochs=2, seed=0, threads=1)
    with private_store(tmp_path, _migrated_store):
        video = run_experiment(Config(family="video", label="last", **common), experiment="pair", progress=False)
        audio = run_experiment(Config(family="audio", **common), experiment="pair", progress=False)
        longer = run_experiment(Config(family="audio", **{**common, "window": 2.0}), experiment="pair", progress=False)
        result = CliRunner().invoke(main, ["train", "late", "--video-run", video.run_id, "--audio-run", audio.run_id])
        assert result.exit_code == 0, result.output
        (run,) = mlflow.search_runs(
            search_all_experiments=True, filter_string="tags.`emo.family` = 'late'", output_format="list"
        )  # (before the second late run below)
        assert (run.data.params["window"], run.data.params["label"]) == ("1.0", "last")
        fused = run_table(run.info.run_id, "predictions/test.parquet")
        video_test = run_table(video.run_id, "predictions/test.parquet")
        audio_model = mlflow.pyfunc.load_model(mlflow.get_run(audio.run_id).data.tags["emo.model_uri"])
        model = mlflow.pyfunc.load_model(run.data.tags["emo.model_uri"])
        # the best video run of an experiment, and the best audio run of its window (not the 2 s one)
        found = CliRunner().invoke(main, ["train", "late", "--from-experiment", "pair", "--partners", "window"])
        assert found.exit_code == 0, found.output
        assert (
            f"video run {video.run_id}, audio run {audio.run_id}" in found.output and longer.run_id not in found.output
        )
        wrong = CliRunner().invoke(main, ["train", "late", "--video-run", video.run_id, "--audio-run", longer.run_id])
        assert wrong.exit_code == 2 and "window 1.0 vs 2.0" in wrong.output, wrong.output
    w = np.array([float(run.data.params[f"weight_video_{t}"]) for t in ("valence", "arousal")])
    # the targets are the video run's own test windows and last-frame labels
    assert fused[["video_id", "start", "end"]].equals(video_test[["video_id", "start", "end"]])
    assert np.array_equal(fused[["true_valence", "true_arousal"]], video_test[["true_valence", "true_arousal"]])
    # the audio part, computed here: the audio model on every audio row whose timestamp is in [start, end)
    rows = pd.read_csv(corpus / "audio_1s.csv")  # eGeMAPS-named columns; a row's video is its file's stem
    rows["video_id"] = rows.pop("filename").str.removesuffix(".wav")
    feats = rows.drop(columns=["video_id", "timestamp"]).to_numpy(np.float32)
    per_row = audio_model.predict({"audio": feats}).to_numpy()
    expected = []
    for vid, start, end, v_val, v_aro in video_test[["video_id", "start", "end", "valence", "arousal"]].itertuples(
        index=False
    ):
        inside = (
            (rows["video_id"].astype(str) == str(vid))
            & (rows["timestamp"] >= start - 1e-9)
            & (rows["timestamp"] < end - 1e-9)
        )
        a = per_row[inside.to_numpy()].mean(axis=0)
        expected.append(w * np.array([v_val, v_aro]) + (1 - w) * a)
    assert np.allclose(fused[["valence", "arousal"]], np.array(expected), atol=1e-5)
    # the logged model predicts what the run scored, through `emo predict`'s path
    table, metrics = predict_split(model, str(corpus), split="test")
    assert np.allclose(table[["valence", "arousal"]], fused[["valence", "arousal"]], atol=1e-5)
    assert metrics["test/rmse_arousal"] == pytest.approx(run.data.metrics["test/rmse_arousal"], abs=1e-5)
