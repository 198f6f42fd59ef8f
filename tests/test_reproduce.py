"""`emo reproduce` runs the matrix once per cell and seed, reuses what ran, shares it between workers;
`emo report` rebuilds the thesis's tables from those runs and renders a page a browser shows."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest

from emo.report.comparison import paired_bootstrap
from emo.report.page import write
from emo.report.tables import COLUMNS, build, collect, matrix_runs
from emo.runs.queries import run_table
from emo.studies.matrix import select
from emo.studies.reproduce import default_study_name, reproduce

SMALL = dict(epochs=2, stride=3, batch_size=128, d_model=16, heads=2, ff=32, hidden=16)


@pytest.fixture(scope="module")
def matrix_corpus(tmp_path_factory):
    from emo.data.synth import SynthConfig, synthesize

    return synthesize(
        tmp_path_factory.mktemp("matrix") / "sewa", SynthConfig(videos=14, duration_s=16.0, dim=8, audio_dim=4, seed=3)
    )


def _children(parent: str) -> pd.DataFrame:
    return mlflow.search_runs(search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent}'")


def test_reproduce_runs_every_cell_once_per_seed_reuses_them_and_reports_the_thesis_tables(
    matrix_corpus, tracking, tmp_path
):
    cells = select(windows="1")  # every table, both archs, the 1 s cells
    storage = f"sqlite:///{tmp_path}/optuna.db"
    first = reproduce(cells, seeds=2, storage=storage, progress=False, data=str(matrix_corpus), **SMALL)
    assert first.ran == first.total == first.finished == 2 * len(cells) and first.reused == 0
    runs = _children(first.parent_run_id)
    assert sorted(zip(runs["tags.emo.cell"], runs["tags.emo.seed"].astype(int))) == sorted(
        (c.name, s) for c in cells for s in (0, 1)
    )
    assert (runs["status"] == "FINISHED").all()
    # a late-fusion cell of a seed fused exactly that seed's runs of its partner cells
    for cell, fused in {
        "late-seq/emo": ["seq-video/emo", "seq-audio/emo"],
        "late-1s/emo": ["video-1s-avg-last/emo", "audio-1s/emo"],
    }.items():
        late = runs[runs["tags.emo.cell"] == cell]
        assert len(late) == 2
        for _, run in late.iterrows():
            partners = runs[runs["tags.emo.cell"].isin(fused)]
            partners = partners[partners["tags.emo.seed"] == run["tags.emo.seed"]]
            assert {run["params.video_run"], run["params.audio_run"]} == set(partners["run_id"])

    again = reproduce(cells, seeds=2, storage=storage, progress=False, data=str(matrix_corpus), **SMALL)
    assert again.parent_run_id == first.parent_run_id and again.ran == again.reused == 0
    elsewhere = reproduce(
        cells, seeds=2, storage=storage, study_name="another", progress=False, data=str(matrix_corpus), **SMALL
    )
    assert elsewhere.ran == 0 and elsewhere.reused == 2 * len(cells)  # same data and settings: nothing retrained
    copies = _children(elsewhere.parent_run_id)
    assert set(copies["tags.emo.reused_from"]) == set(runs["run_id"])

    matrix = matrix_runs(first.parent_run_id)
    frame = collect(matrix.runs)
    # by experiment (name or id): both matrices' runs, each result once (a reused copy is its original)
    whole = collect(matrix_runs("emo-reproduce").runs)  # the matrices' default experiment
    assert len(whole) == len(frame) and set(whole["source_run"]) == set(frame["source_run"])
    experiment_id = mlflow.get_experiment_by_name("emo-reproduce").experiment_id
    assert len(collect(matrix_runs(experiment_id).runs)) == len(frame)
    report = build(
        frame,
        predictions=lambda run, name="test": run_table(run, f"predictions/{name}.parquet"),
        matrix=matrix,
        resamples=500,
    )
    # what the report reads from the runs is what reproduce logged: every cell counted, the budget shown
    assert report.expected == 2 * len(cells) and report.missing.empty
    assert report.provenance["epochs"].startswith("at most 2 per cell; ")
    assert report.provenance["data fingerprint"] == runs["params.data_fingerprint"].iloc[0]
    assert report.provenance["seeds"] == "0, 1 (2 per cell)" and report.provenance["parent run"] == first.parent_run_id
    tables = report.tables
    assert list(tables) == ["baseline", "ffnn", "video", "audio", "fusion", "field", "best"]
    # two seeds: every cell's row is followed by its seed ensemble's
    ensembles = lambda rows: [m for r in rows for m in (r, f"{r}, ensemble of 2 seeds")]  # noqa: E731
    assert list(tables["baseline"]["model"]) == ensembles(["bayesian_ridge", "svr", "tree"])
    assert len(tables["video"]) == 2 * (3 * 2 + 1) and len(tables["fusion"]) == 2 * (6 * 2 + 1)
    assert len(tables["audio"]) == 4
    assert list(tables["best"]["family"]) == ["baseline", "ffnn", "video", "audio", "fusion", "field"]
    assert sorted(tables["field"]["model"]) == ensembles(
        [
            "late fusion of seq video and audio",
            "late fusion of video avg and audio, last-frame label",
            "seq audio",
            "seq both",
            "seq video",
        ]
    )
    metric_columns = [
        f"{s} {m} {t}"
        for s, m in [
            (s, {"mae": "MAE", "rmse": "RMSE", "ccc": "CCC", "ccc_per_recording": "CCC/rec"}[m]) for s, m in COLUMNS
        ]
        for t in ("V", "A")
    ]
    assert list(tables["video"].columns) == [
        "model",
        "window (s)",
        "label",
        "arch",
        "seeds",
        *metric_columns,
        "thesis test RMSE V / A",
    ]
    assert set(tables["fusion"]["thesis test RMSE V / A"]) == {"synthetic data: not comparable"}

    # a value in the table is the mean ± std of the two seeds' logged metrics
    cell = runs[runs["tags.emo.cell"] == "fusion4-v2-1s/thesis"]["metrics.test/rmse_valence"].to_numpy()
    shown = tables["fusion"].set_index(["model", "arch"]).loc[("fusion 4 v2", "thesis"), "test RMSE V"]
    assert shown == f"{cell.mean():.4f} ± {cell.std(ddof=1):.4f}"

    comparison = report.comparison
    assert sorted(comparison.per_seed) == [0, 1] and comparison.label == "last"
    assert all(r["low"] <= r["difference"] <= r["high"] for r in [comparison.pooled, *comparison.per_seed.values()])
    assert "video avg, last-frame label" in comparison.video
    assert any("predict different targets" in n for n in report.notes)
    # and against the field's sequence model (best on dev), scored on the very same test windows
    field = report.field_comparison
    assert field.partner == "field baseline" and sorted(field.per_seed) == [0, 1] and field.label == "last"
    assert field.pooled["windows"] == comparison.pooled["windows"] and field.video.startswith(("seq ", "late fusion"))

    paths = write(report, tmp_path / "report", "a test report")
    html = paths["report.html"].read_text()
    assert html.count("<table") == 9 and html.count("data:image/png;base64,") == 2  # 7 tables, 2 comparisons
    assert (tmp_path / "report" / "tables" / "fusion.csv").exists() and "## Fusion" in paths["report.md"].read_text()
    _check_in_browser(paths["report.html"], tmp_path)


def _check_in_browser(page, tmp_path):
    """The page as a real browser renders it: its tables and images in the DOM, and a screenshot that is not blank."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (`apt-get install chromium`; .ci/run installs it)")
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
    ]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert (
        dom.count("<table") == 9
        and 'id="table-fusion"' in dom
        and 'id="table-field"' in dom
        and 'id="table-comparison-field"' in dom
        and dom.count('id="plot-') == 2
    )
    shot = tmp_path / "page.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()], capture_output=True, timeout=120
    )
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    assert pixels.std() > 0.05 and len(np.unique(pixels.reshape(-1, 3).round(2), axis=0)) > 20  # text, rules, plots


def test_the_paired_bootstrap_interval_resamples_recordings_and_holds_the_observed_difference():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(200, 2))
    keys = {"video_id": np.repeat([f"v{i}" for i in range(10)], 20), "start": np.tile(np.arange(20.0), 10)}
    a = pd.DataFrame(
        {
            **keys,
            "valence": truth[:, 0] + 0.1,
            "arousal": truth[:, 1],
            "true_valence": truth[:, 0],
            "true_arousal": truth[:, 1],
        }
    )
    b = a.assign(valence=truth[:, 0] + rng.normal(0, 0.5, 200), arousal=truth[:, 1] + rng.normal(0, 0.5, 200))
    result = paired_bootstrap(a, b, resamples=1000)
    assert result["recordings"] == 10 and result["windows"] == 200
    assert result["low"] < result["difference"] < result["high"] < 0  # a is clearly better
    same = paired_bootstrap(a, a, resamples=200)
    assert same["difference"] == same["low"] == same["high"] == 0


def _reproduce_cmd(corpus, storage, *extra):
    return [
        sys.executable,
        "-m",
        "emo.cli",
        "reproduce",
        "--data",
        str(corpus),
        "--only",
        "video",
        "--windows",
        "1",
        "--arch",
        "emo",
        "--storage",
        storage,
        "--study-name",
        "shared",
        *extra,
    ]


def test_two_workers_share_one_postgres_matrix_and_run_each_cell_once(matrix_corpus, tracking, postgres_url, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    cmd = _reproduce_cmd(matrix_corpus, postgres_url, "--seeds", "2", "--epochs", "2")
    workers = [
        subprocess.Popen(
            [*cmd, "--threads", str(threads)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for threads in (1, 2)
    ]  # each its own
    outputs = [w.communicate(timeout=400)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs[0][-2000:] + outputs[1][-2000:]
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    done = [
        (t.user_attrs["cell"], t.user_attrs["seed"])
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE
    ]
    assert sorted(done) == sorted((c.name, s) for c in select("video", "1", "emo") for s in (0, 1))
    parent = mlflow.get_run(study.user_attrs["mlflow_parent_run_id"])
    runs = _children(parent.info.run_id)
    assert len(runs) == len(done) == 8 and (runs["status"] == "FINISHED").all()
    assert set(runs["experiment_id"]) == {parent.info.experiment_id} != {"0"}  # the joining worker's cells too
    assert set(runs["params.threads_used"]) == {"1", "2"}  # both workers trained, each with its own threads
    assert not any(k.startswith("common_threads") for k in parent.data.params)
    assert all("8/8 cell runs finished" in o for o in outputs)


def test_the_threads_of_a_worker_do_not_change_which_matrix_it_joins():
    cells = select("video", "1", "emo")
    one, two = ({"data": "d", "epochs": 2, "threads": n} for n in (1, 2))
    assert default_study_name(cells, 1, "fp", one) == default_study_name(cells, 1, "fp", two)
    assert default_study_name(cells, 1, "fp", one) != default_study_name(cells, 1, "fp", {**one, "epochs": 3})


def test_a_cells_key_holds_the_settings_of_its_model_only():
    from emo.studies.matrix import MATRIX
    from emo.studies.reproduce import cell_key

    configs = {c.name: c.config(data="d", seed=0) for c in MATRIX if not c.fuses}
    keys = {name: cell_key(config, "fp", "split") for name, config in configs.items()}
    assert len(set(keys.values())) == len(keys)  # every cell its own experiment
    fusion, baseline = configs["fusion4-v2-4s/emo"], configs["baseline"]
    # a baseline setting does not make Fusion 4 another experiment (earlier runs stay reusable) …
    assert cell_key(fusion.replace(svr_exact_max=1), "fp", "split") == keys["fusion4-v2-4s/emo"]
    assert cell_key(baseline.replace(svr_exact_max=1), "fp", "split") != keys["baseline"]
    # … while its own settings, its seed, the data and the split do; its threads do not
    for changed in (fusion.replace(d_model=32), fusion.replace(seed=1), fusion.replace(threads=2)):
        assert (cell_key(changed, "fp", "split") == keys["fusion4-v2-4s/emo"]) == (changed.threads == 2)
    assert cell_key(fusion, "fp2", "split") != keys["fusion4-v2-4s/emo"] != cell_key(fusion, "fp", "split2")


def test_a_killed_worker_leaves_its_cell_retried_and_nothing_lost(matrix_corpus, tracking, postgres_url, tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    cmd = _reproduce_cmd(matrix_corpus, postgres_url, "--seeds", "1", "--epochs", "30", "--heartbeat", "1")
    doomed = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline, victim = time.monotonic() + 120, None
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            study = optuna.load_study(study_name="shared", storage=postgres_url)
        except KeyError:
            continue
        running = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.RUNNING and "mlflow_run_id" in t.user_attrs
        ]
        victim = running[0] if running else None
    assert victim is not None, "the first worker never started a cell"
    os.killpg(doomed.pid, signal.SIGKILL)  # no goodbye: no run closed, no trial failed
    doomed.wait()
    survivor = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert survivor.returncode == 0, survivor.stdout[-2000:] + survivor.stderr[-2000:]

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    complete = [t.user_attrs["cell"] for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(complete) == sorted(c.name for c in select("video", "1", "emo"))  # each cell exactly once
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.user_attrs["cell"] for t in failed] == [victim.user_attrs["cell"]]
    dead = mlflow.MlflowClient().get_run(victim.user_attrs["mlflow_run_id"])
    assert dead.info.status == "FAILED" and "stopped sending heartbeats" in dead.data.tags["failure_reason"]
    # the survivor joined a study it did not create: its cells still go to the parent's experiment
    parent = mlflow.get_run(study.user_attrs["mlflow_parent_run_id"])
    runs = _children(parent.info.run_id)
    assert len(runs) == len(complete) + 1 and set(runs["experiment_id"]) == {parent.info.experiment_id} != {"0"}


def test_workers_2_runs_a_second_worker_of_the_same_matrix_on_this_machine_each_on_its_share_of_cores(
    matrix_corpus, tracking, tmp_path
):
    cmd = [sys.executable, "-m", "emo.cli", "reproduce", "--data", str(matrix_corpus), "--only", "video"]
    cmd += ["--windows", "1", "--arch", "emo", "--epochs", "2", "--seeds", "3", "--workers", "2"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking}
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "12/12 cell runs finished" in proc.stdout
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path}/optuna.db")
    (helper_log,) = (tmp_path / "emo-workers" / study.study_name).glob("worker-*.log")
    assert "12/12 cell runs finished" in helper_log.read_text()  # the helper joined this very matrix
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted((t.user_attrs["cell"], t.user_attrs["seed"]) for t in complete) == sorted(
        (c.name, s) for c in select("video", "1", "emo") for s in range(3)
    )  # each cell and seed once, between them
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both processes trained
    parent = mlflow.get_run(study.user_attrs["mlflow_parent_run_id"])
    runs = _children(parent.info.run_id)
    assert len(runs) == 12 and (runs["status"] == "FINISHED").all() and parent.info.status == "FINISHED"
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert set(runs["params.threads_used"]) == {share}


def test_a_matrix_shows_one_progress_bar_with_log_lines_above_it(matrix_corpus, tracking, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "emo.cli",
        "reproduce",
        "--data",
        str(matrix_corpus),
        "--only",
        "video",
        "--windows",
        "1",
        "--arch",
        "emo",
        "--epochs",
        "1",
        "--storage",
        f"sqlite:///{tmp_path}/optuna.db",
    ]
    proc = subprocess.run(
        cmd,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Downloading artifacts" not in proc.stderr  # MLflow's own bars stay off while the matrix's runs
    pieces = re.split(r"[\r\n]", proc.stderr)
    assert any("4/4" in p for p in pieces if p.startswith("matrix "))
    # a log line (emo's or MLflow's) never continues a drawn bar: each starts a line of its own
    glued = [p for p in pieces if p.startswith("matrix ") and "INFO" in p]
    assert not glued, glued[:3]
    assert sum(p.startswith("INFO emo.studies.reproduce:") for p in pieces) == 4
