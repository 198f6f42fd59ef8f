"""Where the arithmetic runs: precision (fp32, bf16, fp16), CPU threads, the CUDA path, and the cheaper dropout."""

import os
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emo.cli import main
from emo.core.compute import bf16_supported
from emo.core.config import Config
from emo.experiment import prepare_inputs, run_experiment
from emo.models.blocks import Dropout
from emo.trainer import predict

FAST = dict(epochs=3, patience=3, batch_size=64, seed=0, window=2)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
bf16_cpu = pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="this CPU has no bf16 support")


def test_dropout_drops_its_rate_and_keeps_the_expectation():
    x = torch.ones(400, 1000)
    layer = Dropout(0.1).train()
    y = layer(x)
    assert (y == 0).float().mean().item() == pytest.approx(0.1, abs=0.003)
    assert y.mean().item() == pytest.approx(1.0, abs=0.005)
    assert torch.unique(y).tolist() == [0.0, pytest.approx(65536 / (65536 - round(0.1 * 65536)))]  # kept: 1 / (1 - p)


def test_dropout_draws_from_the_seeded_generator_and_is_the_identity_in_eval():
    x = torch.randn(64, 20, 32)
    layer = Dropout(0.3)
    torch.manual_seed(7)
    first = layer(x)
    torch.manual_seed(7)
    assert torch.equal(layer(x), first)
    assert not torch.equal(layer(x), first)
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x) and torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))


def test_dropout_passes_gradients_only_through_kept_values():
    x = torch.randn(32, 50, requires_grad=True)
    y = Dropout(0.5).train()(x)
    y.sum().backward()
    kept = y != 0
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], 2.0), rtol=1e-4)
    assert torch.all(x.grad[~kept] == 0)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precision", "fp16"], "fp16 needs a CUDA GPU"),
        (["--precision", "half"], "'half' is not one of fp32, bf16, fp16"),
        (["--threads", "0"], "threads must be at least 1"),
    ]
    + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "sees no CUDA GPU")]),
)
def test_a_precision_threads_or_device_this_machine_cannot_honour_is_refused_before_a_run(
    corpus, tracking, args, message
):
    result = CliRunner().invoke(main, ["train", "video", "--data", str(corpus), "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert mlflow.search_runs(search_all_experiments=True).empty


@bf16_cpu
def test_bf16_trains_repeats_exactly_and_evaluates_the_same_weights_as_fp32_to_within_its_precision(corpus, tracking):
    # What bf16 guarantees on any CPU that runs it. Two trainings, fp32 and bf16, drift apart step by
    # step by amounts that depend on the CPU's kernels (AMX or AVX-512), so their dev RMSEs are not
    # compared; the same weights evaluated in both precisions are.
    cfg = Config(family="fusion", data=str(corpus), **FAST)
    fp32 = run_experiment(cfg, progress=False, evaluate_test=False)
    bf16 = run_experiment(cfg.replace(precision="bf16"), progress=False, evaluate_test=False)
    again = run_experiment(cfg.replace(precision="bf16"), track=False, progress=False, evaluate_test=False)
    assert again.dev == bf16.dev  # same seed, same numbers
    for target in ("valence", "arousal"):  # it learns: better than predicting the training mean
        assert bf16.dev[f"dev/rmse_{target}"] < bf16.mean_predictor_dev[f"dev/rmse_{target}"], target

    _, inputs = prepare_inputs(cfg)  # the inputs the training read
    network = mlflow.pyfunc.load_model(fp32.model_uri).unwrap_python_model().network
    y, full = predict(network, inputs.samples["dev"], precision="fp32")
    _, half = predict(network, inputs.samples["dev"], precision="bf16")
    assert half.dtype == full.dtype == np.float32
    # bf16 keeps 8 significant bits (relative rounding 2**-9): outputs in [-1, 1] move by hundredths at most
    assert np.abs(half - full).max() < 0.02 and not np.array_equal(half, full)  # autocast did run in bf16
    rmse = lambda p: np.sqrt(np.mean((p - y) ** 2, axis=0))  # noqa: E731
    np.testing.assert_allclose(rmse(half), rmse(full), rtol=0.01)
    params = mlflow.get_run(bf16.run_id).data.params
    assert params["precision"] == "bf16" and mlflow.get_run(fp32.run_id).data.params["precision"] == "fp32"


def test_threads_are_set_logged_and_may_change_when_a_run_is_resumed(corpus, tracking):
    before = torch.get_num_threads()
    try:
        first = run_experiment(
            Config(family="ffnn", data=str(corpus), threads=1, **{**FAST, "epochs": 1}), progress=False
        )
        params = mlflow.get_run(first.run_id).data.params
        assert params["threads"] == "1" and params["threads_used"] == "1"
        result = CliRunner().invoke(
            main, ["train", "ffnn", "--resume", first.run_id, "--epochs", "2", "--threads", "2"]
        )
        assert result.exit_code == 0, result.output
        params = mlflow.get_run(first.run_id).data.params
        assert params["resumed_threads"] == "2" and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_trains_in_each_precision_and_its_checkpoint_and_model_load_on_the_cpu(fusion_corpus, tracking, precision):
    from emo.runs.checkpoints import load_checkpoint

    cfg = Config(family="fusion", data=str(fusion_corpus), device="cuda", precision=precision, **FAST)
    result = run_experiment(cfg, progress=False)
    assert mlflow.get_run(result.run_id).data.params["device_used"] == "cuda"
    assert result.dev["dev/rmse_valence"] < result.mean_predictor_dev["dev/rmse_valence"]
    body = load_checkpoint(result.run_id)
    assert all(t.device.type == "cpu" for t in body["model"].values())
    assert mlflow.pyfunc.load_model(result.model_uri).metadata.run_id == result.run_id


def test_emos_commands_let_idle_openmp_threads_sleep_unless_told_otherwise():
    show = "import emo.cli, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True).stdout == "PASSIVE\n"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    assert subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True).stdout == "ACTIVE\n"
