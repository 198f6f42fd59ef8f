"""A real `mlflow models serve` of the champion answers valid requests and rejects malformed ones with 4xx."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pytest

from emo import champion
from emo.config import Config
from emo.experiment import run_experiment

TINY = dict(family="fusion", method=4, variant="v2", window=1, stride=2, epochs=2, d_model=16, heads=2, ff=32,
            repeats=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture
def served_champion(fusion_corpus, tracking):
    result = run_experiment(Config(data=str(fusion_corpus), **TINY), progress=False)
    assert champion.register(mlflow.MlflowClient().get_run(result.run_id)).champion
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/emo-fusion4@champion",
                             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            env={**os.environ, "MLFLOW_TRACKING_URI": tracking}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"mlflow models serve exited: {proc.stdout.read().decode()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("mlflow models serve did not answer /ping within 120 s")
        yield port, result
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_served_champion_answers_a_batch_and_rejects_malformed_requests(served_champion):
    port, result = served_champion
    frames, audio_len = 5, int(mlflow.MlflowClient().get_run(result.run_id).data.params["dim_audio_len"])
    rng = np.random.default_rng(0)
    body = {"inputs": {"video": rng.normal(size=(3, frames, 16)).tolist(),
                       "audio": rng.normal(size=(3, audio_len, 8)).tolist(),
                       "audio_mask": [[True] * audio_len, [True] + [False] * (audio_len - 1), [False] * audio_len]}}
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
