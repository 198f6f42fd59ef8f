"""The sequence family (the AVEC/MuSe baseline): segments as indices, a masked loss, frame predictions
averaged over overlapping segments, audio rows aligned to frames, and a model that reads long context."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from emo.core.config import Config
from emo.data.segments import frame_means, make_segments
from emo.data.tables import FrameTable
from emo.data.windows import frame_audio_rows
from emo.experiment import run_experiment
from emo.trainer import ccc_loss, rmse_loss, scored

from servers import private_store
from tables import write_dataset


def table(lengths: list[int], times: list[np.ndarray] | None = None, dim: int = 1) -> FrameTable:
    """A frame table of videos v0, v1, … with `lengths` rows at 5 fps (or the given times)."""
    times = times or [np.arange(n) / 5.0 for n in lengths]
    n = sum(lengths)
    return FrameTable(
        source=None,
        video_ids=np.array([f"v{k}" for k in range(len(lengths))]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        times=np.concatenate(times).astype(np.float64),
        features=np.zeros((n, dim), np.float32),
        labels=None,
        feature_names=[f"emb_{j}" for j in range(dim)],
    )


@pytest.mark.parametrize("loss", [rmse_loss, ccc_loss])
def test_padding_and_unlabelled_steps_never_change_the_loss(loss):
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(3, 5, 2, generator=g) * 2 - 1, torch.rand(3, 5, 2, generator=g) * 2 - 1
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=torch.bool)
    value = loss(*scored(pred, target, mask))
    # the same steps, picked by hand in row-major order
    picked = [(b, t) for b in range(3) for t in range(5) if mask[b, t]]
    by_hand = loss(torch.stack([pred[b, t] for b, t in picked]), torch.stack([target[b, t] for b, t in picked]))
    assert torch.allclose(value, by_hand)
    # whatever padded or unlabelled steps hold, the loss stays
    noisy_pred, noisy_target = pred.clone(), target.clone()
    noisy_pred[~mask], noisy_target[~mask] = 99.0, -99.0
    assert torch.equal(loss(*scored(noisy_pred, noisy_target, mask)), value)


def test_segments_cover_every_frame_and_the_last_ends_at_the_recordings_end():
    t = table([7, 3, 4])
    seg = make_segments(t, length=4, hop=2)
    # v0 (rows 0-6): starts 0, 2 and one ending at its last frame (3); v1 (7-9): one short segment;
    # v2 (10-13): exactly one
    assert seg.starts.tolist() == [0, 2, 3, 7, 10]
    assert seg.lengths.tolist() == [4, 4, 4, 3, 4]
    assert seg.video.tolist() == [0, 0, 0, 1, 2]
    assert np.array_equal(seg.real()[3], [True, True, True, False])
    assert make_segments(t, length=4, hop=2, videos=["v1"]).starts.tolist() == [7]


def test_overlapping_segment_predictions_are_averaged_per_frame_at_recording_ends():
    t = table([7, 3])
    seg = make_segments(t, length=4, hop=2)
    values = np.arange(len(seg) * 4 * 2, dtype=np.float32).reshape(len(seg), 4, 2)
    values[3, 3] = 1e6  # padding: must never reach a frame
    rows, means = frame_means(seg, values, t.n_rows)
    expected = {}
    for i in range(len(seg)):
        for step in range(seg.lengths[i]):
            expected.setdefault(seg.starts[i] + step, []).append(values[i, step])
    assert rows.tolist() == list(range(10))
    for row, got in zip(rows, means, strict=True):
        assert np.allclose(got, np.mean(expected[row], axis=0))
    # frame 3 is in all three segments of v0 (starts 0, 2, 3), frame 5 in two, the last frame (6) in one
    assert np.allclose(means[3], (values[0, 3] + values[1, 1] + values[2, 0]) / 3)
    assert np.allclose(means[5], (values[1, 3] + values[2, 2]) / 2) and np.allclose(means[6], values[2, 3])
    assert np.allclose(means[9], values[3, 2])  # v1's short segment: its padded step is nowhere


def test_unlabelled_frames_and_padding_never_reach_the_scores():
    from emo.data.inputs import frame_predictions
    from emo.data.samples import SequenceSamples

    t = table([7, 3])
    t.labels = np.tile(np.array([[0.5, -0.5]], np.float32), (10, 1))
    t.labels[[1, 8]] = np.nan  # unlabelled frames
    seg = make_segments(t, length=4, hop=2)
    samples = SequenceSamples(t, seg, fps=5.0)
    batch = samples.__getitems__(list(range(len(seg))))
    # the target mask is the real, labelled steps: v0's frame 1 and v1's frame 8 and its padded step are out
    assert batch.target_mask.sum().item() == sum(int(n) for n in seg.lengths) - 1 - 1
    assert not batch.target_mask[3, 3] and not batch.target_mask[3, 1] and not batch.target_mask[0, 1]
    preds = np.zeros((len(seg), 4, 2), np.float32)
    index, truth, pred = frame_predictions(samples, preds)
    noisy = preds.copy()
    noisy[~seg.real()] = 50.0  # padding
    noisy[0, 1] = noisy[3, 1] = -50.0  # the unlabelled frames 1 and 8
    index2, truth2, pred2 = frame_predictions(samples, noisy)
    assert len(pred) == 8 and np.array_equal(pred, pred2) and np.array_equal(truth, truth2)
    assert np.allclose(index.end - index.start, 0.2) and index.video_id.tolist() == ["v0"] * 6 + ["v1"] * 2


def test_each_frame_gets_the_latest_audio_row_whose_window_holds_it():
    rng = np.random.default_rng(3)
    video = table([40, 25])
    audio_times = [np.sort(rng.uniform(-1, 9, 12)).round(2), np.sort(rng.uniform(0, 5, 6)).round(2)]
    audio = table([12, 6], audio_times)
    rows = frame_audio_rows(video, audio, window_s=1.0)
    for k in range(2):
        for r in range(video.offsets[k], video.offsets[k + 1]):
            t = video.times[r]
            holding = [
                a for a in range(audio.offsets[k], audio.offsets[k + 1]) if audio.times[a] <= t < audio.times[a] + 1.0
            ]
            assert rows[r] == (max(holding, key=lambda a: (audio.times[a], a)) if holding else -1)


def integrator_corpus(folder, *, videos: int = 24, seconds: float = 60.0, fps: float = 5.0, tau: float = 8.0):
    """Valence is a slow leaky integral (time constant `tau` seconds) of feature 0's pulses: what it is
    now depends on the last ~2 tau seconds, far more than any 4 s window holds. Arousal is feature 1."""
    rng = np.random.default_rng(0)
    frames, n = [], int(seconds * fps)
    decay = np.exp(-1.0 / (tau * fps))
    for v in range(videos):
        pulses = (rng.random(n) < 0.05) * rng.choice([-1.0, 1.0], n)
        state, valence = 0.0, np.empty(n)
        for i in range(n):
            state = decay * state + (1 - decay) * pulses[i] * 6.0
            valence[i] = np.tanh(state)
        noise = rng.normal(size=(n, 2)).astype(np.float32)
        frames.append(
            pd.DataFrame(
                {
                    "video_id": f"vid{v:02d}",
                    "timestamp": np.arange(n) / fps,
                    "valence": valence.round(4),
                    "arousal": np.tanh(noise[:, 1]).round(4),
                    "emb_0": pulses.astype(np.float32),
                    "emb_1": noise[:, 1],
                    "emb_2": noise[:, 0],
                }
            )
        )
    return write_dataset(folder, pd.concat(frames, ignore_index=True), meta={"name": "integrator", "fps": fps})


def test_a_context_longer_than_any_window_is_learnt_by_the_sequence_model_and_not_by_the_4s_gru(tmp_path):
    data = str(integrator_corpus(tmp_path / "integrator", videos=16))
    common = dict(data=data, epochs=12, patience=12, lr=3e-3, seed=0, threads=1)
    seq = run_experiment(
        Config(family="seq", segment=30.0, hop=10.0, batch_size=8, **common), track=False, progress=False
    )
    gru = run_experiment(Config(family="video", window=4.0, stride=2, **common), track=False, progress=False)
    seq_rmse, gru_rmse = seq.dev["dev/rmse_valence"], gru.dev["dev/rmse_valence"]
    # seen: 0.020 and 0.032 against 0.106 and 0.111 (seeds 0 and 1); the mean predictor scores 0.140
    assert seq_rmse < 0.5 * gru_rmse, (seq_rmse, gru_rmse)


def test_a_logged_sequence_model_predicts_a_dataset_as_it_was_scored(corpus, _migrated_store, tmp_path):
    """Served the pyfunc way (a row per step), `emo predict` averages the segments per frame again and
    gives exactly the test predictions the run logged."""
    import mlflow

    from emo.predict import predict_split
    from emo.runs.queries import run_table

    config = Config(family="seq", data=str(corpus), modality="both", segment=6.0, hop=2.0, epochs=1, seed=0)
    with private_store(tmp_path, _migrated_store):
        result = run_experiment(config, progress=False)
        logged = run_table(result.run_id, "predictions/test.parquet")
        model = mlflow.pyfunc.load_model(result.model_uri)
    table, metrics = predict_split(model, str(corpus), split="test")
    assert len(table) == len(logged) > 0 and (table["video_id"] == logged["video_id"]).all()
    assert np.allclose(table[["valence", "arousal"]], logged[["valence", "arousal"]], atol=1e-5)
    assert metrics["test/rmse_valence"] == pytest.approx(result.test["test/rmse_valence"], abs=1e-5)


@pytest.mark.parametrize("label", ["last", "mean"])
def test_the_sequence_model_is_scored_on_exactly_a_windowed_cells_test_windows_and_targets(corpus, label):
    """The like-for-like comparisons need the sequence model on the windowed cells' own windows: its
    prediction at a window's last frame (last-frame label), or its mean over the window (mean label)."""
    from emo.experiment import train
    from emo.runs.tracker import MemoryTracker

    seq, video = MemoryTracker(), MemoryTracker()
    train(
        Config(family="seq", data=str(corpus), segment=6.0, hop=3.0, epochs=1, seed=0, threads=1), seq, progress=False
    )
    train(Config(family="video", data=str(corpus), window=2.0, label=label, epochs=1, threads=1), video, progress=False)
    windows = video.artifacts["predictions/test.parquet"]
    scored = seq.artifacts[f"predictions/test_2s_{label}.parquet"]
    keys = ["video_id", "start", "end", "true_valence", "true_arousal"]
    assert len(scored) == len(windows) > 0
    assert np.allclose(scored[keys[1:]].to_numpy(float), windows[keys[1:]].to_numpy(float))
    assert (scored["video_id"].to_numpy() == windows["video_id"].to_numpy()).all()
    # each window's prediction from the logged frame predictions, by hand
    frames = seq.artifacts["predictions/test.parquet"]
    for _, w in scored.sample(20, random_state=0).iterrows():
        inside = frames[(frames["video_id"] == w["video_id"]) & (frames["start"] >= w["start"] - 1e-9)]
        inside = inside[inside["end"] <= w["end"] + 1e-9]
        expected = inside.iloc[-1][["valence", "arousal"]] if label == "last" else inside[["valence", "arousal"]].mean()
        assert np.allclose(w[["valence", "arousal"]].to_numpy(float), expected.to_numpy(float), atol=1e-5)
    assert f"test_2s_{label}/rmse_valence" in seq.metrics


def test_the_same_seed_gives_the_same_sequence_model(corpus):
    config = Config(family="seq", data=str(corpus), modality="both", segment=6.0, hop=3.0, epochs=2, seed=3, threads=1)
    first, again = (run_experiment(config, track=False, progress=False) for _ in range(2))
    assert first.dev == again.dev and first.test == again.test
    other = run_experiment(config.replace(seed=4), track=False, progress=False)
    assert other.dev != first.dev
