"""`emo report` as its reader meets it: where the numbers come from, CSVs of numbers, plots that read at any
number of windows, tables that fit a 1400 px page in a real browser, a like-for-like comparison that names its
metric per seed and pooled, Markdown that shows run text literally, and a matrix's missing cells named.

The report's inputs are built directly (a frame as `collect` makes it, or runs logged to a real sqlite
store as `emo reproduce` logs them): nothing here trains.
"""

import html
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt
from matplotlib import colors as mpl_colors
from mlflow.entities import Metric, Param

from emo.cli import main
from emo.core.config import FAMILIES
from emo.report.figures import metric_vs_window
from emo.report.page import write
from emo.report.tables import build, collect, matrix_runs
from emo.studies.matrix import CELLS, select

METRICS = [
    f"{split}_{m}_{t}"
    for split in ("dev", "test")
    for m in ("mae", "rmse", "ccc", "ccc_per_recording")
    for t in ("valence", "arousal")
]
LOGGED = {"dev": "best_dev/", "test": "test/"}  # a frame column's split -> the prefix of the metric a run logs


def _frame(cells, seeds=(0, 1), seed: int = 0) -> pd.DataFrame:
    """Rows as `collect` makes them, one per (cell, seed), every metric a different random number."""
    rng = np.random.default_rng(seed)
    rows = [
        {
            "cell": c.name,
            "table": c.table,
            "row": c.row,
            "arch": c.arch,
            "seed": s,
            "window": c.window,
            "label": c.settings.get("label", FAMILIES[c.family].label if c.family in FAMILIES else "mean"),
            "run_id": f"{c.name}#{s}",
            "source_run": f"{c.name}#{s}",
            "published_key": c.published_key,
            "data_source": "synthetic",
            "data_fingerprint": "f1",
            "split_hash": "h1",
            **dict(zip(METRICS, rng.uniform(0.05, 0.3, len(METRICS)))),
        }
        for c in cells
        for s in seeds
    ]
    return pd.DataFrame(rows)


class _Text(HTMLParser):
    """The tags of an HTML document, its list items and its table rows as text."""

    def __init__(self, page: str):
        super().__init__()
        self.tags, self.items, self.rows, self._cell = set(), [], [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th", "li"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
        if tag == "li" and self._cell is not None:
            self.items.append("".join(self._cell).strip())
        if tag in ("td", "th", "li"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _markdown(path) -> _Text:
    """report.md as a Markdown renderer with GitHub's tables shows it."""
    return _Text(MarkdownIt("commonmark").enable("table").render(path.read_text()))


# ---------------------------------------------------------------- runs logged as `emo reproduce` logs them

FINGERPRINT, SPLIT = "0123abcd", "split9"


def _log_matrix(cells: list[str], seeds: int, *, absent=(), failed=(), elsewhere=(), epochs_run: int = 2):
    """A matrix parent run in experiment emo-reproduce with one child per (cell, seed), as `emo reproduce`
    logs them, less `absent`, with `failed` FAILED and `elsewhere` in another experiment. Returns the
    parent run id and the test RMSE valence logged per (cell, seed)."""
    client = mlflow.MlflowClient()
    home, other = (client.create_experiment(name) for name in ("emo-reproduce", "elsewhere"))
    parent = client.create_run(home, run_name="reproduce-m", tags={"emo.kind": "reproduce", "emo.matrix": "m"})
    parent_id = parent.info.run_id
    client.log_batch(
        parent_id,
        params=[
            Param("seeds", str(seeds)),
            Param("cells", str(len(cells))),
            Param("data_fingerprint", FINGERPRINT),
            Param("split_hash", SPLIT),
        ],
    )
    client.log_text(parent_id, "\n".join(cells), "cells.txt")
    rng, logged = np.random.default_rng(1), {}
    for name in cells:
        cell = CELLS[name]
        for seed in range(seeds):
            if (name, seed) in absent:
                continue
            run = client.create_run(
                other if (name, seed) in elsewhere else home,
                run_name=f"{name}-seed{seed}",
                tags={
                    "mlflow.parentRunId": parent_id,
                    "emo.cell": name,
                    "emo.seed": str(seed),
                    "emo.table": cell.table,
                    "emo.row": cell.row,
                    "emo.arch": cell.arch,
                    "emo.family": cell.family,
                    "epochs_run": str(epochs_run),
                },
            )
            values = dict(zip(METRICS, rng.uniform(0.05, 0.3, len(METRICS))))
            logged[name, seed] = values["test_rmse_valence"]
            params = {
                "window": f"{cell.window:g}",
                "label": cell.settings.get("label", FAMILIES[cell.family].label if cell.family in FAMILIES else "mean"),
                "data_name": "sewa-small",
                "data_fingerprint": FINGERPRINT,
                "data_source": "synthetic",
                "split_hash": SPLIT,
                "epochs": "3",
                "patience": "5",
                "emo_version": "0.0.9",
            }
            client.log_batch(
                run.info.run_id,
                params=[Param(k, v) for k, v in params.items()],
                metrics=[Metric(LOGGED[k.split("_")[0]] + k.split("_", 1)[1], v, 0, 0) for k, v in values.items()],
            )
            client.set_terminated(run.info.run_id, "FAILED" if (name, seed) in failed else "FINISHED")
    return parent_id, logged


def test_the_report_says_which_runs_data_budget_versions_and_dates_its_numbers_come_from(tracking, tmp_path):
    parent, _ = _log_matrix(["audio-1s/emo", "video-1s-avg/emo"], seeds=2)
    matrix = matrix_runs(parent)
    written = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    paths = write(build(collect(matrix.runs), matrix=matrix, written=written), tmp_path, "report")

    runs = mlflow.MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("emo-reproduce").experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
    )

    def utc(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")

    first, last = utc(min(r.info.start_time for r in runs)), utc(max(r.info.end_time for r in runs))
    expected = {
        "parent run": parent,
        "data": "sewa-small",
        "data fingerprint": FINGERPRINT,
        "split hash": SPLIT,
        "epochs": "at most 3 per cell; 2 ran",
        "patience": "5",
        "seeds": "0, 1 (2 per cell)",
        "emo version": "0.0.9 (the runs); 0.1.0 (this report)",
        "cell runs": "4 of 4 expected (cells × seeds) finished",
        "date": f"runs from {first} to {last} UTC; report written 2030-01-02 03:04 UTC",
    }
    experiment = mlflow.get_experiment_by_name("emo-reproduce")
    expected["experiment"] = f"'emo-reproduce' (id {experiment.experiment_id})"
    expected["tracking URI"] = tracking
    shown_md = dict(item.split(": ", 1) for item in _markdown(paths["report.md"]).items)
    page = paths["report.html"].read_text()
    shown_html = {html.unescape(k): html.unescape(v) for k, v in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page)}
    assert {k: shown_md.get(k) for k in expected} == expected
    assert {k: shown_html.get(k) for k in expected} == expected


def test_csv_tables_hold_mean_and_std_as_numbers(tmp_path):
    cells = select("fusion", "1")
    frame = pd.concat([_frame(cells[1:]), _frame(cells[:1], seeds=(0,))])  # fusion 1 thesis: one seed
    write(build(frame), tmp_path, "report")
    table = pd.read_csv(tmp_path / "tables" / "fusion.csv").set_index(["model", "arch"])

    assert not table.astype(str).apply(lambda c: c.str.contains("±")).any().any()
    means = [c for c in table.columns if c.endswith("_mean")]
    stds = [c.removesuffix("_mean") + "_std" for c in means]
    assert len(means) == 10 and (table[means + stds].dtypes == np.float64).all()  # a std beside every mean
    two = frame[(frame["row"] == "fusion 4 v2") & (frame["arch"] == "emo")]["test_rmse_arousal"].to_numpy()
    assert table.loc[("fusion 4 v2", "emo"), "test_rmse_arousal_mean"] == pytest.approx(two.mean())
    assert table.loc[("fusion 4 v2", "emo"), "test_rmse_arousal_std"] == pytest.approx(two.std(ddof=1))
    one = frame[(frame["row"] == cells[0].row) & (frame["arch"] == cells[0].arch)]
    row = table.loc[(cells[0].row, cells[0].arch)]
    assert row["seeds"] == 1 and row["test_ccc_valence_mean"] == pytest.approx(one["test_ccc_valence"].item())
    assert np.isnan(row["test_ccc_valence_std"])  # one seed has no spread, not a spread of 0
    assert table["thesis_test_rmse_valence"].isna().all()
    assert set(table["thesis_note"]) == {"synthetic data: not comparable"}


def _panels(fig, family: str) -> list:
    return [ax for ax in fig.axes if ax.get_title().startswith(family)]


def _style(container) -> tuple:
    line = container.lines[0]
    return tuple(np.round(mpl_colors.to_rgba(line.get_color()), 3)), line.get_marker()


def test_one_window_plots_one_point_per_model_each_in_its_own_colour_and_marker():
    frame = _frame(select(windows="1"))
    agg = build(frame).aggregate
    fig = metric_vs_window(agg)
    fusion = frame[frame["table"] == "fusion"]
    means = fusion.groupby(["row", "arch"])["test_rmse_valence"].mean()  # sorted by model, as plotted
    valence, arousal = _panels(fig, "fusion")
    points = valence.containers
    assert len(points) == len(means) == 13
    assert [len(c.lines[0].get_xdata()) for c in points] == [1] * 13
    assert [c.lines[0].get_xdata()[0] for c in points] == pytest.approx(list(means))
    assert sorted(c.lines[0].get_ydata()[0] for c in points) == list(range(13))  # a row each, none piled up
    assert [t.get_text() for t in valence.get_yticklabels()] == [f"{r} ({a})" for r, a in means.index]
    styles = [_style(c) for c in points]
    assert len({c for c, _ in styles}) == len({m for _, m in styles}) == 13
    assert [_style(c) for c in arousal.containers] == styles  # a model looks the same in both panels


def test_several_windows_plot_a_line_per_model_with_no_colour_reused_in_the_legend():
    frame = _frame(select("fusion,audio", "2,4"))
    fig = metric_vs_window(build(frame).aggregate)
    valence, arousal = _panels(fig, "fusion")
    assert [t.get_text() for t in valence.get_xticklabels()] == ["2", "4"]
    assert all(len(c.lines[0].get_xdata()) == 2 for c in valence.containers)
    legend = arousal.get_legend()
    entries = [t.get_text() for t in legend.get_texts()]
    colours = [tuple(np.round(mpl_colors.to_rgba(h.get_color()), 3)) for h in legend.legend_handles]
    assert len(entries) == len(set(entries)) == 13 and len(set(colours)) == 13
    assert [t.get_text() for t in _panels(fig, "audio")[0].get_xticklabels()] == ["2", "4"]


def _layout_in_chromium(page, tmp_path, width: int = 1400) -> dict:
    """Each table's right edge and whether its box scrolls, as headless Chromium lays the page out `width` wide."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (`apt-get install chromium`; .ci/run installs it)")
    probe = (
        "<script>document.body.dataset.layout = JSON.stringify({width: document.documentElement.clientWidth, "
        "tables: [...document.querySelectorAll('table')].map(t => ({id: t.id, right: t.getBoundingClientRect()"
        ".right, scrolls: t.parentElement.scrollWidth > t.parentElement.clientWidth}))});</script>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", probe + "</body>"))
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},1000",
            "--dump-dom",
            probed.as_uri(),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return json.loads(html.unescape(re.search(r'data-layout="([^"]*)"', dom).group(1)))


def test_every_table_fits_a_1400_px_wide_page_without_scrolling(tmp_path):
    paths = write(build(_frame(select(windows="1"))), tmp_path, "report")
    layout = _layout_in_chromium(paths["report.html"], tmp_path)
    assert layout["width"] == 1400 and len(layout["tables"]) == 7
    assert [t["id"] for t in layout["tables"] if t["scrolls"] or t["right"] > layout["width"]] == []


def _predictions(truth: np.ndarray, noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = {"video_id": np.repeat([f"v{i}" for i in range(8)], 25), "start": np.tile(np.arange(25.0), 8)}
    guess = truth + rng.normal(0, noise, truth.shape)
    return pd.DataFrame(
        {
            **keys,
            "valence": guess[:, 0],
            "arousal": guess[:, 1],
            "true_valence": truth[:, 0],
            "true_arousal": truth[:, 1],
        }
    )


def test_like_for_like_names_its_metric_and_compares_each_seed_and_the_pool(tmp_path):
    fusion, partner, video = CELLS["fusion1-1s/emo"], CELLS["video-1s-avg-last/emo"], CELLS["video-1s-avg/emo"]
    frame = _frame([fusion, partner, video])
    truth = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    tables = {
        f"{c.name}#{s}": _predictions(truth, noise, 10 * s + k)
        for k, (c, noise) in enumerate([(fusion, 0.2), (partner, 0.3)])
        for s in (0, 1)
    }
    report = build(frame, predictions=tables.__getitem__, resamples=300)
    paths = write(report, tmp_path, "report")

    def rmse(p: pd.DataFrame) -> float:  # the mean of the valence and arousal RMSEs
        return np.mean([np.sqrt(((p[t] - p[f"true_{t}"]) ** 2).mean()) for t in ("valence", "arousal")])

    differences = [rmse(tables[f"{fusion.name}#{s}"]) - rmse(tables[f"{partner.name}#{s}"]) for s in (0, 1)]
    comparison = report.comparison
    assert [comparison.per_seed[s]["difference"] for s in (0, 1)] == pytest.approx(differences)
    assert comparison.pooled["difference"] == pytest.approx(np.mean(differences))
    assert comparison.pooled["low"] <= comparison.pooled["difference"] <= comparison.pooled["high"] < 0

    for text in (_markdown(paths["report.md"]), _Text(paths["report.html"].read_text())):
        rows = {r[0]: r for r in text.rows if r and r[0].startswith(("seed ", "pooled"))}
        assert list(rows) == ["seed 0", "seed 1", "pooled over 2 seeds"]
        assert [r[3] for r in rows.values()] == [f"{d:+.4f}" for d in [*differences, np.mean(differences)]]
    prose = " ".join(paths["report.md"].read_text().split())
    assert "Metric: test RMSE, the mean of the valence RMSE and the arousal RMSE over the test windows" in prose
    assert "fusion 1 1 s (emo) against video avg, last-frame label 1 s (emo)" in prose


def test_fusion_meets_the_field_sequence_model_best_on_dev_on_its_own_windows(tmp_path):
    fusion, seq_video, seq_both = CELLS["fusion1-1s/emo"], CELLS["seq-video/emo"], CELLS["seq-both/emo"]
    frame = _frame([fusion, seq_video, seq_both])
    frame.loc[frame["cell"] == seq_both.name, ["dev_rmse_valence", "dev_rmse_arousal"]] = 0.01  # best on dev
    frame.loc[frame["cell"] == seq_video.name, ["test_rmse_valence", "test_rmse_arousal"]] = 0.001  # best on test
    truth = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    read = {f"{fusion.name}#{s}": _predictions(truth, 0.2, s) for s in (0, 1)}
    # a sequence run is read on the fusion cell's windows (1 s, last-frame label), never its frame table
    read |= {
        f"{c.name}#{s}/test_1s_last": _predictions(truth, n, 5 + s)
        for c, n in ((seq_video, 0.1), (seq_both, 0.4))
        for s in (0, 1)
    }
    report = build(
        frame, predictions=lambda run, name="test": read[run if name == "test" else f"{run}/{name}"], resamples=300
    )

    def rmse(p: pd.DataFrame) -> float:
        return np.mean([np.sqrt(((p[t] - p[f"true_{t}"]) ** 2).mean()) for t in ("valence", "arousal")])

    field = report.field_comparison
    assert field.video.startswith("seq both") and field.partner == "field baseline"  # chosen on dev, not test
    differences = [rmse(read[f"{fusion.name}#{s}"]) - rmse(read[f"{seq_both.name}#{s}/test_1s_last"]) for s in (0, 1)]
    assert [field.per_seed[s]["difference"] for s in (0, 1)] == pytest.approx(differences)
    page = write(report, tmp_path, "report")["report.md"].read_text()
    assert "## Fusion against the field, like for like" in page and "field baseline lower (better)" not in page


def test_markdown_shows_names_and_tags_from_runs_literally(tmp_path):
    hostile = '<script>alert("x")</script> | *bold* _it_ [link](http://e.example) `code` & co'
    frame = _frame(select("audio", "1")).assign(row=hostile, arch="emo <b>")
    paths = write(build(frame), tmp_path, "report")
    shown = _markdown(paths["report.md"])
    assert not shown.tags & {"script", "b", "em", "a", "code"}  # (the provenance's labels are <strong>)
    audio = [r for r in shown.rows if r[:1] == [hostile]]  # the audio table's row (both archs: one name now)
    best = [r for r in shown.rows if r[:2] == ["audio", hostile]]  # the best table's, after the family
    assert len(audio) == len(best) == 1 and audio[0][3] == best[0][4] == "emo <b>"
    assert len(audio[0]) == len(best[0]) - 1 == 16  # no cell split by the name's `|`
    assert "<script>" not in paths["report.html"].read_text()


# ---------------------------------------------------------------- `emo report`, the command


def test_report_says_where_it_looked_when_it_finds_no_matrix_run(tracking, tmp_path):
    mlflow.set_experiment("emo-fusion")
    with mlflow.start_run():  # a training run, not a matrix cell
        mlflow.log_param("window", "4")
    experiment = mlflow.get_experiment_by_name("emo-fusion").experiment_id
    empty = CliRunner().invoke(main, ["report", "emo-fusion", "--out", str(tmp_path / "r")])
    assert empty.exit_code == 2
    message = " ".join(empty.output.split())
    assert f"experiment 'emo-fusion' (id {experiment}) at tracking URI {tracking}" in message

    unknown = CliRunner().invoke(main, ["report", "no-such-thing", "--out", str(tmp_path / "r")])
    assert unknown.exit_code == 2 and f"at tracking URI {tracking}" in " ".join(unknown.output.split())


def test_report_counts_the_expected_cells_names_the_missing_and_finds_cells_in_other_experiments(tracking, tmp_path):
    cells = ["audio-1s/emo", "video-1s-avg/emo"]
    parent, logged = _log_matrix(
        cells, seeds=2, absent={("audio-1s/emo", 1)}, failed={("audio-1s/emo", 0)}, elsewhere={("video-1s-avg/emo", 1)}
    )
    result = CliRunner().invoke(main, ["report", parent, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    counted = (
        "2 of 4 expected (cells × seeds) finished; missing 2: audio-1s/emo seed 0 (FAILED), "
        "audio-1s/emo seed 1 (no run found)"
    )
    assert f"cell runs: {counted}" in result.output.splitlines()
    notes = [
        n
        for n in " ".join((tmp_path / "r" / "report.md").read_text().split()).split("> ")
        if n.startswith("Incomplete matrix")
    ]
    assert len(notes) == 1 and counted in notes[0]
    video = pd.read_csv(tmp_path / "r" / "tables" / "video.csv")  # both seeds, one from the other experiment
    both = [logged["video-1s-avg/emo", s] for s in (0, 1)]
    assert video["seeds"].tolist() == [2] and video["test_rmse_valence_mean"].item() == pytest.approx(np.mean(both))
    assert not (tmp_path / "r" / "tables" / "audio.csv").exists()
