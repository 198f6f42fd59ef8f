"""The README's "Using a logged model" snippet, run as written against a logged fusion and a logged ffnn
model, and the one-line message an input of the wrong shape gets: from `model.predict` in Python and
from MLflow's scoring-server code (what `mlflow models serve` answers)."""

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from servers import private_store

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = '"models:/m-…"'
TINY = {
    "fusion": dict(family="fusion", method=4, variant="v2", window=1, stride=2, d_model=16, heads=2, ff=32, repeats=1),
    "ffnn": dict(family="ffnn", hidden=8),
}


@pytest.fixture(scope="module")
def logged(corpus, _migrated_store, tmp_path_factory):
    """A tiny fusion and ffnn model, trained for one epoch and logged once for the module. Yields {family: model URI}
    with the tracking store set (the `tracking` fixture is per test; training twice per test is slow)."""
    from emo.core.config import Config
    from emo.experiment import run_experiment

    with private_store(tmp_path_factory.mktemp("logged"), _migrated_store):
        yield {
            family: run_experiment(Config(data=str(corpus), epochs=1, seed=0, **kw), progress=False).model_uri
            for family, kw in TINY.items()
        }


def readme_snippet() -> str:
    """The code block of the README's "Using a logged model" section."""
    section = (ROOT / "README.md").read_text().split("### Using a logged model", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def wrong(shape: tuple) -> tuple:
    """A per-sample shape one longer in its first dimension (frames for fusion, features for ffnn)."""
    return (shape[0] + 1, *shape[1:])


@pytest.mark.parametrize("family", TINY)
def test_the_readme_snippet_runs_as_written_on_any_emo_model(logged, family, capsys):
    code = readme_snippet()
    assert code.count(PLACEHOLDER) == 1 and len(code.strip().splitlines()) <= 12
    space = {}
    exec(compile(code.replace(PLACEHOLDER, repr(logged[family])), "README snippet", "exec"), space)
    printed = capsys.readouterr().out
    assert printed.count("valence") >= 2, printed  # the example's and the batch's predictions

    model, example, batch = space["model"], space["example"], space["batch"]
    expected = {"fusion": ["video", "audio", "audio_mask"], "ffnn": ["video"]}[family]
    assert list(example) == list(batch) == expected
    pred = model.predict(batch)
    assert list(pred.columns) == ["valence", "arousal"] and len(pred) == 4
    assert np.isfinite(pred.to_numpy()).all() and (pred.abs() <= 1).all().all()


@pytest.mark.parametrize("family", TINY)
def test_the_signature_states_every_shape_and_dtype(logged, family):
    model = mlflow.pyfunc.load_model(logged[family])
    specs = {spec.name: spec for spec in model.metadata.get_input_schema().inputs}
    for name, value in model.input_example.items():
        if name.endswith("_mask"):  # untyped on purpose (emo.runs.pyfunc.signature); the audio spec states its length
            assert specs[name].shape == (-1,) and value.shape[1:] == specs["audio"].shape[1:2]
        else:
            assert specs[name].type == np.dtype(np.float32) and specs[name].shape == (-1, *value.shape[1:])


@pytest.mark.parametrize("family", TINY)
def test_a_wrong_shape_gets_one_line_naming_the_input_and_both_shapes(logged, family):
    model = mlflow.pyfunc.load_model(logged[family])
    example = model.input_example
    shape = example["video"].shape[1:]
    expected = f"expected (batch, {', '.join(map(str, shape))})"
    for bad in (np.zeros((2, *wrong(shape)), np.float32), example["video"][0]):  # and one sample without a batch
        with pytest.raises(MlflowException) as refused:
            model.predict({**example, "video": bad})
        message = refused.value.message
        assert len(message) < 300 and "\n" not in message, message
        assert f"input 'video' has shape {bad.shape}" in message and expected in message, message
    # MLflow's own check (which printed the whole input) refused float64 arrays too; emo casts them
    as_f64 = {k: v if k.endswith("_mask") else v.astype(np.float64) for k, v in example.items()}
    assert model.predict(as_f64).to_numpy() == pytest.approx(model.predict(example).to_numpy(), abs=1e-6)


@pytest.mark.parametrize("family", TINY)
def test_served_a_wrong_shape_gets_a_400_with_the_same_line(logged, family):
    """MLflow's scoring code, as `mlflow models serve` runs it, without starting a server."""
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(logged[family])
    schema = model.metadata.get_input_schema()
    inputs = {k: v.tolist() for k, v in model.input_example.items()}
    answer = scoring_server.invocations(json.dumps({"inputs": inputs}), "application/json", model, schema)
    assert answer.status == 200 and len(json.loads(answer.response)["predictions"]) == 2

    shape = model.input_example["video"].shape[1:]
    bad = np.zeros((2, *wrong(shape))).tolist()
    with pytest.raises(MlflowException) as refused:
        scoring_server.invocations(json.dumps({"inputs": {**inputs, "video": bad}}), "application/json", model, schema)
    assert refused.value.get_http_status_code() == 400
    message = json.loads(refused.value.serialize_as_json())["message"]  # the body the server sends
    expected = f"input 'video' has shape {(2, *wrong(shape))}; expected (batch, {', '.join(map(str, shape))})."
    assert message == expected, message


def test_an_input_error_keeps_its_line_when_mlflow_prefixes_the_request():
    from emo.runs.pyfunc import bad_request

    error = bad_request("input 'video' has shape (2, 3); expected (batch, 4).")
    error.message = f"Failed to predict data '{{'video': {[[0.0] * 3] * 2}}}'. \nError: {error.message}"
    assert error.message == "input 'video' has shape (2, 3); expected (batch, 4)."
    error.message = "something else"  # a message of its own is not a prefix: it stands
    assert error.message == "something else"


OLD_MODEL = ROOT / "tests" / "fixtures" / "fusion4-logged-by-emo-0.1.0"


def test_a_model_logged_by_an_earlier_emo_still_loads_and_predicts_the_same():
    model = mlflow.pyfunc.load_model(str(OLD_MODEL))
    expected = json.loads((OLD_MODEL / "predictions.json").read_text())
    pred = model.predict(model.input_example)
    np.testing.assert_allclose(pred["valence"], expected["valence"], atol=1e-5)
    np.testing.assert_allclose(pred["arousal"], expected["arousal"], atol=1e-5)
