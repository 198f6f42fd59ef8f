"""The four fusion methods train on synchronised windows, use the voice, and run as `mlflow run -e fusion`."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner

from emo.cli import main
from emo.core.config import Config
from emo.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(
    d_model=32, heads=2, ff=64, depth=1, repeats=1, hidden=32, epochs=6, patience=3, stride=2, window=2, seed=0
)
METHODS = [(1, None), (2, None), (3, None), (4, "v1"), (4, "v2"), (4, "v3")]


@pytest.fixture(scope="module")
def fusion4(fusion_corpus):
    return run_experiment(
        Config(family="fusion", data=str(fusion_corpus), method=4, variant="v2", **SMALL), track=False, progress=False
    )


@pytest.mark.parametrize("method, variant", METHODS)
def test_every_fusion_method_beats_the_mean_predictor_on_dev(fusion_corpus, fusion4, method, variant):
    result = (
        fusion4
        if (method, variant) == (4, "v2")
        else run_experiment(
            Config(family="fusion", data=str(fusion_corpus), method=method, variant=variant, **SMALL),
            track=False,
            progress=False,
        )
    )
    for target in ("valence", "arousal"):
        ours, mean = result.dev[f"dev/rmse_{target}"], result.mean_predictor_dev[f"dev/rmse_{target}"]
        assert ours < 0.5 * mean, f"fusion {method} {variant} {target}: {ours:.3f} vs mean {mean:.3f}"


def test_fusion4_predicts_arousal_better_than_the_video_model_on_the_same_windows(fusion_corpus, fusion4):
    # same windows (2 s, stride 2), same last-frame labels, same seed; the voice carries arousal
    transformer_only = ("d_model", "heads", "ff", "depth", "repeats")
    video = run_experiment(
        Config(
            family="video",
            data=str(fusion_corpus),
            label="last",
            **{k: v for k, v in SMALL.items() if k not in transformer_only},
        ),
        track=False,
        progress=False,
    )
    assert video.dev["dev/rmse_arousal"] - fusion4.dev["dev/rmse_arousal"] > 0.03, (
        video.dev["dev/rmse_arousal"],
        fusion4.dev["dev/rmse_arousal"],
    )


def test_fusion_on_a_video_only_dataset_says_it_needs_audio_tables(tmp_path):
    from emo.data.synth import SynthConfig, synthesize

    afew = synthesize(tmp_path / "afew", SynthConfig(kind="afew", videos=4, duration_s=10, dim=4))
    result = CliRunner().invoke(main, ["train", "fusion", "--data", str(afew), "--no-track"])
    assert result.exit_code == 2
    assert "fusion needs audio tables" in result.output and "Traceback" not in result.output


def test_mlflow_run_fusion_v2_produces_a_complete_run(fusion_corpus, tracking):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(ROOT),
            "-e",
            "fusion",
            "-P",
            "variant=v2",
            "-P",
            f"data={fusion_corpus}",
            "-P",
            "window=1",
            "-P",
            "epochs=2",
            "-P",
            "d_model=32",
            "-P",
            "ff=64",
            "-P",
            "repeats=1",
            "--env-manager",
            "local",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mlflow ui" in proc.stdout
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED" and run["tags.mlflow.runName"] == "fusion4-v2 1s seed0"
    assert run["params.variant"] == "v2" and run["params.method"] == "4" and run["params.label"] == "last"
    assert run["params.dim_audio_len"] == "2" and run["params.d_model"] == "32"
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run["run_id"], "dev/loss")] == [1, 2]
    assert run["metrics.test/rmse_valence"] > 0 and run["metrics.best_dev/rmse_mean"] > 0
    assert {a.path for a in client.list_artifacts(run["run_id"])} == {
        "checkpoints",
        "predictions",
        "learning_curves.png",
        "dev_traces.png",
        "dev_predicted_vs_true.png",
    }
    model_uri = mlflow.search_logged_models(output_format="list")[0].model_uri
    model = mlflow.pyfunc.load_model(model_uri)
    rng = np.random.default_rng(0)
    video, audio = rng.normal(size=(4, 5, 16)).astype(np.float32), rng.normal(size=(4, 2, 8)).astype(np.float32)
    mask = np.array([[True, True], [True, False], [False, False], [True, True]])
    pred = model.predict({"video": video, "audio": audio, "audio_mask": mask})
    assert pred.shape == (4, 2) and np.isfinite(pred.to_numpy()).all()
    audio[1, 1] = 99.0  # a padded step: ignored
    again = model.predict({"video": video, "audio": audio, "audio_mask": mask})
    np.testing.assert_allclose(again.to_numpy(), pred.to_numpy(), atol=1e-6)


def test_a_fusion_window_without_an_audio_table_of_its_length_takes_the_longest_shorter_one():
    from emo.data.inputs import choose_audio_window

    assert choose_audio_window(9.0, [1, 2, 3, 4]) == 4  # not the 1 s table
    assert choose_audio_window(2.5, [1, 2, 3, 4]) == 2
    assert choose_audio_window(3.0, [1, 3]) == 3
    assert choose_audio_window(0.5, [2, 4]) == 2  # none shorter: the shortest there is
