"""A real `mlflow models serve` of the champion answers valid requests and rejects malformed ones with 4xx."""

import os

import mlflow
import numpy as np
import pytest

from emo.core.config import Config
from emo.experiment import run_experiment
from emo.runs import champion

from servers import post, served_model

TINY = dict(
    family="fusion", method=4, variant="v2", window=1, stride=2, epochs=2, d_model=16, heads=2, ff=32, repeats=1
)


@pytest.fixture
def served_champion(fusion_corpus, tracking, tmp_path):
    result = run_experiment(Config(data=str(fusion_corpus), **TINY), progress=False)
    assert champion.register(mlflow.MlflowClient().get_run(result.run_id)).champion
    with served_model(
        "models:/emo-fusion4@champion", {**os.environ, "MLFLOW_TRACKING_URI": tracking}, tmp_path / "serve.log"
    ) as port:
        yield port, result


def test_the_served_champion_answers_a_batch_and_rejects_malformed_requests(served_champion):
    port, result = served_champion
    frames, audio_len = 5, int(mlflow.MlflowClient().get_run(result.run_id).data.params["dim_audio_len"])
    rng = np.random.default_rng(0)
    body = {
        "inputs": {
            "video": rng.normal(size=(3, frames, 16)).tolist(),
            "audio": rng.normal(size=(3, audio_len, 8)).tolist(),
            "audio_mask": [[True] * audio_len, [True] + [False] * (audio_len - 1), [False] * audio_len],
        }
    }
    status, answer = post(port, body)
    assert status == 200, answer
    preds = answer["predictions"]
    assert len(preds) == 3 and all(set(p) == {"valence", "arousal"} for p in preds)
    assert all(-1 <= p["valence"] <= 1 and -1 <= p["arousal"] <= 1 for p in preds)

    missing = {"inputs": {k: v for k, v in body["inputs"].items() if k != "audio"}}
    wrong_shape = {"inputs": {**body["inputs"], "video": rng.normal(size=(3, frames + 1, 16)).tolist()}}
    wrong_type = {"inputs": {**body["inputs"], "video": [[["x"] * 16] * frames] * 3}}
    for bad in (missing, wrong_shape, wrong_type, b"not json"):
        status, answer = post(port, bad)
        assert 400 <= status < 500, (status, answer)
        assert answer.get("message"), answer
