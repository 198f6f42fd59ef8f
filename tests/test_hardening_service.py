"""A real `mlflow models serve` of an emo fusion model fed odd input: masks that are not booleans,
batches over the cap, a few hundred random malformed requests. (The compose stack's signed-in MLflow
server is tested in test_service.py.)"""

import json
import os
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest

from servers import post, private_store, served_model

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(
    family="fusion", method=4, variant="v2", window=1, stride=2, epochs=1, d_model=16, heads=2, ff=32, repeats=1
)
MAX_BATCH = 16  # the served model's cap (EMO_MAX_BATCH), small so that a batch over it is cheap to send


@pytest.fixture(scope="module")
def served(corpus, _migrated_store, tmp_path_factory):
    """A tiny fusion model, trained and logged once, served by `mlflow models serve` with
    EMO_MAX_BATCH=16. Yields (port, shapes, model URI, tracking URI)."""
    from emo.core.config import Config
    from emo.experiment import run_experiment

    folder = tmp_path_factory.mktemp("served")
    with private_store(folder, _migrated_store) as uri:
        result = run_experiment(Config(data=str(corpus), **TINY), progress=False)
        params = mlflow.MlflowClient().get_run(result.run_id).data.params
    shapes = {"frames": 5, "dim": 16, "audio_len": int(params["dim_audio_len"]), "audio_dim": 8}
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "EMO_MAX_BATCH": str(MAX_BATCH)}
    with served_model(result.model_uri, env, folder / "serve.log") as port:
        yield port, shapes, result.model_uri, uri


def valid(shapes: dict, batch: int, rng) -> dict:
    ta = shapes["audio_len"]
    return {
        "video": rng.normal(size=(batch, shapes["frames"], shapes["dim"])).round(4).tolist(),
        "audio": rng.normal(size=(batch, ta, shapes["audio_dim"])).round(4).tolist(),
        "audio_mask": (rng.random((batch, ta)) < 0.7).tolist(),
    }


def test_the_served_model_takes_booleans_or_0_1_as_audio_mask_and_refuses_anything_else(served):
    port, shapes, _, _ = served
    rng = np.random.default_rng(0)
    inputs = valid(shapes, 3, rng)
    ta = shapes["audio_len"]
    inputs["audio_mask"] = [[True] * ta, [True] + [False] * (ta - 1), [False] * ta]
    status, answer = post(port, {"inputs": inputs})
    assert status == 200, answer
    as_ints = [[int(v) for v in row] for row in inputs["audio_mask"]]
    status, again = post(port, {"inputs": {**inputs, "audio_mask": as_ints}})
    assert status == 200 and again == answer  # 0/1 means false/true

    # each of these used to be read by its truth value: a padded step taken for a real one, with a 200
    for odd in ("false", "no", 0.5, 2, None, "1", 1.0, -1):
        mask = [row[:] for row in inputs["audio_mask"]]
        mask[1][ta - 1] = odd
        status, refused = post(port, {"inputs": {**inputs, "audio_mask": mask}})
        assert status == 400, (odd, status, refused)
        assert "'audio_mask' must hold booleans (true/false) or 0/1" in refused["message"], refused
        assert f"at [1, {ta - 1}]" in refused["message"]


def test_a_batch_over_the_cap_is_refused_with_the_setting_to_change(served):
    port, shapes, model_uri, uri = served
    rng = np.random.default_rng(1)
    status, answer = post(port, {"inputs": valid(shapes, MAX_BATCH, rng)})
    assert status == 200 and len(answer["predictions"]) == MAX_BATCH
    status, refused = post(port, {"inputs": valid(shapes, MAX_BATCH + 1, rng)})
    assert status == 400, refused
    assert (
        f"holds {MAX_BATCH + 1} samples; this server takes at most {MAX_BATCH} per request (EMO_MAX_BATCH)"
        in refused["message"]
    )

    # without the setting, loading the model sets the cap at 4096 windows (in Python as in the server)
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    finally:
        mlflow.set_tracking_uri(None)
    assert model.unwrap_python_model().max_batch == 4096
    zeros = {
        "video": np.zeros((4097, shapes["frames"], shapes["dim"]), np.float32),
        "audio": np.zeros((4097, shapes["audio_len"], shapes["audio_dim"]), np.float32),
        "audio_mask": np.ones((4097, shapes["audio_len"]), bool),
    }
    with pytest.raises(MlflowException, match="at most 4096 per request"):
        model.predict(zeros)
    assert len(model.predict({k: v[:4096] for k, v in zeros.items()})) == 4096


def _regular(value) -> bool:
    """Whether `value` is a nested list of one shape (numpy can hold it)."""
    try:
        np.shape(value)
        return isinstance(value, list)
    except ValueError:
        return False


def _malformed(rng, shapes: dict) -> dict:
    """One random request body: a valid one with one or two things broken."""
    batch = int(rng.integers(1, 4))
    inputs = valid(shapes, batch, rng)
    odd_values = [
        "x",
        "",
        None,
        True,
        [],
        {},
        {"a": 1},
        [[1]],
        float("nan"),
        float("inf"),
        -float("inf"),
        1e39,
        -1e300,
        10**40,
        "1e3",
        1.5,
    ]
    for _ in range(int(rng.integers(1, 3))):
        name = str(rng.choice(["video", "audio", "audio_mask"]))
        kind = int(rng.integers(0, 11))
        value = inputs.get(name)
        nested = isinstance(value, list) and bool(value) and isinstance(value[0], list)
        if kind == 0:
            inputs.pop(name, None)  # a missing input
        elif kind == 1:
            inputs[f"extra_{name}"] = value  # an input the model does not take
        elif kind == 2 and nested:  # one value replaced by something odd
            arr = np.empty(np.shape(value), dtype=object) if _regular(value) else None
            if arr is not None and arr.ndim:
                arr[...] = value if arr.ndim == 1 else np.array(value, dtype=object)
                arr[tuple(int(rng.integers(0, n)) for n in arr.shape)] = odd_values[int(rng.integers(len(odd_values)))]
                inputs[name] = arr.tolist()
        elif kind == 3 and nested:  # one sample one step longer or shorter: ragged
            sample = value[0]
            inputs[name] = [sample[:-1] if rng.random() < 0.5 else sample + sample[:1], *value[1:]]
        elif kind == 4:
            inputs[name] = odd_values[int(rng.integers(len(odd_values)))]  # a scalar or a string for an array
        elif kind == 5:
            inputs[name] = [value]  # one level too deep
        elif kind == 6 and nested:
            inputs[name] = value[0]  # one level too shallow
        elif kind == 7:
            inputs[name] = []  # empty
        elif kind == 8 and nested:  # another batch size than the other inputs
            inputs[name] = value + value[:1]
        elif kind == 9:  # every value of one input of a wrong type
            filler = odd_values[int(rng.integers(len(odd_values)))]
            shape = np.shape(value) if _regular(value) else (batch, 2)
            arr = np.empty(shape, dtype=object)
            arr.fill(filler)
            inputs[name] = arr.tolist()
        else:  # a batch over the server's cap
            inputs = valid(shapes, MAX_BATCH + int(rng.integers(1, 4)), rng)
    layout = int(rng.integers(0, 12))
    if layout == 0:
        return {"instances": inputs}
    if layout == 1:
        return {"inputs": list(inputs.values())}
    if layout == 2:
        return {"dataframe_split": {"columns": list(inputs), "data": [list(inputs.values())]}}
    if layout == 3:
        return {"inputs": inputs, "params": {"x": 1}}
    if layout == 4:
        return {}
    return {"inputs": inputs}


def test_a_few_hundred_malformed_requests_get_4xx_from_emos_checks_and_never_a_5xx(served):
    """Seeded: every request is a JSON object with a Content-Type (MLflow's own 500s for a missing
    Content-Type or absurdly deep JSON come before emo's model; the README names them)."""
    port, shapes, _, _ = served
    rng = np.random.default_rng(20240611)
    started, statuses = time.time(), {}
    for i in range(300):
        body = _malformed(rng, shapes)
        status, answer = post(port, json.dumps(body, allow_nan=True).encode())
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (i, status, answer, json.dumps(body)[:500])
        if status == 200:  # what got through is a well-formed batch with finite predictions in range
            preds = answer["predictions"]
            assert preds and all(-1 <= p["valence"] <= 1 and -1 <= p["arousal"] <= 1 for p in preds), answer
        else:
            assert 400 <= status < 500 and answer.get("message"), (i, status, answer)
            # an exception emo did not foresee surfaces as MLflow's generic message: none may
            assert "unexpected error while evaluating the model" not in answer["message"], (i, answer, body)
    print(f"statuses of the malformed requests: {statuses}")
    assert statuses.get(400, 0) > 250, statuses  # nearly every request was malformed, and said so
    status, answer = post(port, {"inputs": valid(shapes, 2, rng)})
    assert status == 200 and len(answer["predictions"]) == 2  # and the server still answers
    assert time.time() - started < 60


def test_mlflows_own_500s_named_in_the_readme_leave_the_server_answering(served):
    port, shapes, _, _ = served
    body = json.dumps({"inputs": valid(shapes, 1, np.random.default_rng(2))}).encode()
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # urllib would add a Content-Type
    conn.putrequest("POST", "/invocations")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    assert conn.getresponse().status == 500  # no Content-Type: MLflow's parser
    conn.close()
    assert post(port, b"[" * 100_000 + b"]" * 100_000)[0] == 500  # too deep for its JSON parser
    status, answer = post(port, body)
    assert status == 200 and len(answer["predictions"]) == 1
    readme = (ROOT / "README.md").read_text()
    assert "EMO_MAX_BATCH" in readme and "`Content-Type`" in readme and "nested thousands of levels" in readme
