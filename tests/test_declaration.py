"""Every default declared once: the MLproject is generated from emo's settings, and `mlflow run`
and `emo train` log the same parameters for every family."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from click.testing import CliRunner

from emo.cli import main
from emo.cli.mlproject import render
from emo.core.config import FAMILIES, Config, model_defaults
from emo.studies.matrix import CELLS, MATRIX, find, select

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_mlproject_is_the_generated_one():
    assert (ROOT / "MLproject").read_text() == render(main), "MLproject is out of date: run `emo mlproject`"


def test_every_setting_of_a_model_is_a_parameter_of_its_entry_point_with_the_logged_default():
    spec = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]
    assert spec["main"] == spec["fusion"]  # `mlflow run .` is the quick start
    entries = {
        **{f: Config(family=f) for f in FAMILIES},
        **{f"fusion{m}": Config(family="fusion", method=m) for m in (1, 2, 3)},
    }
    for entry, config in entries.items():
        params = spec[entry]["parameters"]
        assert list(params) == [s for s in config.settings() if s != "method"]
        assert {k: str(v["default"]) for k, v in params.items()} == {
            k: v for k, v in config.params().items() if k != "method"
        }
        assert spec[entry]["command"].startswith(f"python entrypoints/run.py train {config.family}")
    assert spec["video"]["parameters"]["window"]["default"] == "3.0"  # the thesis's best SEWA video window
    assert spec["audio"]["parameters"]["window"]["default"] == "1.0"
    assert spec["fusion"]["parameters"]["label"]["default"] == "last"
    assert {"kernel_size", "stride", "loss", "audio_window", "audio_len", "repeats", "readout", "arch"} <= set(
        spec["fusion"]["parameters"]
    )
    # an entry point lists only what its model uses: MLflow logs every parameter it declares
    assert "--method 4" in spec["fusion"]["command"] and "--method 2" in spec["fusion2"]["command"]
    assert not {"hidden", "depth"} & set(spec["fusion"]["parameters"])
    assert "hidden" in spec["fusion1"]["parameters"] and "d_model" not in spec["fusion1"]["parameters"]
    assert "depth" in spec["fusion2"]["parameters"] and "repeats" not in spec["fusion2"]["parameters"]


def test_the_models_of_a_family_never_disagree_on_a_default():
    for family in FAMILIES.values():
        seen = {}
        for model in family.models:
            for name, value in model_defaults(model).items():
                assert seen.setdefault(name, value) == value, (model, name)
    # fusion 2's blocks and fusion 4's repeated blocks are separate settings with the thesis's numbers
    assert model_defaults("fusion2")["depth"] == 2 and model_defaults("fusion4")["repeats"] == 3


def test_a_fusion_method_trains_with_its_own_defaults_whatever_the_entry_point():
    assert Config(method=2).hyperparameters()["depth"] == 2
    assert Config(method=4).hyperparameters()["repeats"] == 3
    assert Config(method=2).params()["depth"] == "2" and "repeats" not in Config(method=2).params()
    assert "hidden" not in Config(method=4).params() and Config(method=1).params()["hidden"] == "128"


def test_auto_takes_the_data_decided_default_on_the_command_line(corpus):
    result = CliRunner().invoke(
        main, ["train", "fusion", "--data", str(corpus), "--fps", "auto", "--audio-len", "auto", "--epochs", "0"]
    )
    assert result.exit_code == 2 and "epochs must be at least 1" in result.output
    result = CliRunner().invoke(main, ["train", "video", "--fps", "fast"])
    assert result.exit_code == 2 and "'fast' is not a valid float (or 'auto')" in result.output


def _run_params(run_id: str) -> dict:
    return mlflow.MlflowClient().get_run(run_id).data.params


def test_mlflow_run_and_emo_train_log_identical_parameters_for_every_family(corpus, tracking, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    opts = {f: ["algorithms=bayesian_ridge"] if f == "baseline" else ["epochs=1"] for f in FAMILIES}
    runs = {}  # the five `mlflow run`s go on in the background while emo train runs here
    for family in FAMILIES:
        entry = "main" if family == "fusion" else family  # `mlflow run .` is fusion's entry point
        params = [a for o in [f"data={corpus}", *opts[family]] for a in ("-P", o)]
        if family == "fusion":  # and Fusion 1, from its own entry point: it alone takes `hidden`
            runs["fusion1"] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "run",
                    str(ROOT),
                    "-e",
                    "fusion1",
                    *params,
                    "--env-manager",
                    "local",
                    "--experiment-name",
                    "mlflow-run-fusion1",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=tmp_path,
            )
        runs[family] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "run",
                str(ROOT),
                "-e",
                entry,
                *params,
                "--env-manager",
                "local",
                "--experiment-name",
                f"mlflow-run-{family}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
    for family in [*FAMILIES, "fusion1"]:
        key, value = opts.get(family, opts["fusion"])[0].split("=")
        method = ["--method", "1"] if family == "fusion1" else []
        result = CliRunner().invoke(
            main,
            [
                "train",
                family.rstrip("1"),
                *method,
                "--data",
                str(corpus),
                f"--{key}",
                value,
                "--experiment",
                f"emo-train-{family}",
            ],
        )
        assert result.exit_code == 0, result.output
    for family, proc in runs.items():
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, out[-3000:]
        top = {}
        for source in ("mlflow-run", "emo-train"):
            found = [
                r
                for r in mlflow.search_runs(experiment_names=[f"{source}-{family}"], output_format="list")
                if "mlflow.parentRunId" not in r.data.tags
            ]
            assert len(found) == 1, (source, family)
            top[source] = _run_params(found[0].info.run_id)
        ours, theirs = top["emo-train"], top["mlflow-run"]
        assert ours == theirs, {
            k: (ours.get(k), theirs.get(k)) for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)
        }
        config = Config(family="fusion", method=1) if family == "fusion1" else Config(family=family)
        assert set(config.settings()) <= set(ours)
        assert ("hidden" in ours) == (family in ("fusion1", "ffnn", "audio", "video", "seq"))


def test_a_misspelt_mlflow_run_parameter_gets_the_one_meant_and_the_list(tracking, tmp_path):
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
            "varaint=v2",
            "--env-manager",
            "local",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if x.startswith("error:"))
    expected = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]["fusion"]["parameters"]
    assert line.startswith("error: -P varaint is not a parameter of this entry point. Did you mean -P variant? ")
    assert line.endswith(f"Its parameters: {', '.join(sorted(expected))}.")  # `method` is fixed, not one of them
    assert "Traceback" not in proc.stderr


def test_the_matrix_holds_the_thesis_cells_each_as_thesis_and_as_emo():
    names = [c.name for c in MATRIX]
    assert len(names) == len(set(names)) == len(CELLS)
    video = [c for c in MATRIX if c.table == "video" and c.settings.get("label") is None]
    assert len(video) == 4 * 3 * 2  # windows × poolings × arch
    fusion = [c for c in MATRIX if c.table == "fusion" and "readout" not in c.settings]
    assert len(fusion) == 4 * 6 * 2  # windows × (1, 2, 3, 4v1, 4v2, 4v3) × arch
    assert len([c for c in MATRIX if c.table == "audio"]) == 4 * 2
    assert find("fusion4-v2-4s/thesis").config().hyperparameters()["variant"] == "v2"
    assert find("video-3s-avg-last/emo").config().window_label == "last"  # like for like with fusion
    assert {c.table for c in select("video,fusion", "1", "thesis")} == {"video", "fusion"}
    assert all(c.window == 1.0 for c in select("video,fusion", "1"))
    with pytest.raises(Exception, match="did you mean fusion4-v2"):
        find("fusion4-v2")


def test_tuning_a_named_experiment_searches_its_family_space_without_the_cells_own_settings():
    from emo.studies.tuning import search_space

    cell = find("video-3s-avg/thesis")
    space = search_space(cell.family, fixed=cell.settings)
    assert "window" not in space and "pooling" not in space and {"hidden", "lr", "dropout"} <= set(space)
    assert cell.config(epochs=2).params()["arch"] == "thesis"


def test_what_a_run_leaves_in_the_working_folder_is_ignored_by_git():
    # the quick start's sqlite store, its migration lock, the tuning store, checkpoints and the demo corpus
    left = [
        "mlflow.db",
        "mlflow.db.lock",
        "optuna.db",
        "checkpoints/run/checkpoint.pt",
        "mlartifacts/1/x",
        "data/synthetic-sewa/video.parquet",
    ]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *left], cwd=ROOT, capture_output=True, text=True)
    assert sorted(proc.stdout.split()) == sorted(left)


def test_every_models_hyperparameters_and_defaults_are_the_declared_ones():
    """emo.core.hyper is what the command line reads without torch; the constructors must take exactly
    those hyperparameters, with those defaults."""
    import inspect

    from emo.core.hyper import HYPER
    from emo.models import MODELS
    from emo.models.registry import STRUCTURAL_KEYS

    assert set(HYPER) == set(MODELS)
    for name, constructor in MODELS.items():
        params = inspect.signature(constructor).parameters.values()
        taken = {p.name: p.default for p in params if p.name not in STRUCTURAL_KEYS and p.name != "self"}
        assert taken == HYPER[name], name
    # the thesis's sizes, written out here apart from emo
    assert HYPER["fusion4"]["d_model"] == 128 and HYPER["fusion4"]["heads"] == 4 and HYPER["video"]["hidden"] == 128
