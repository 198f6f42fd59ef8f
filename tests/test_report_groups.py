"""Results per group (meta.json's `groups`, e.g. culture) in `emo report`, and the cross-group protocol of
`emo data split`.

A group's numbers are scored on exactly the test windows of that group's videos: the groups of one name add
up to the test windows that have a value, and a video without one is named, never put in a group. The
like-for-like comparison is repeated per group. `emo data split --train-groups culture=A,B --test-groups
culture=C` trains on some values and tests on others; older split.json files load as they did.

The report's inputs are built by hand (rows as `collect` makes them, predictions as runs log them); the
expected numbers are computed here with numpy.
"""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_report import _layout_in_chromium, _markdown

from emo.cli import main
from emo.core.errors import DataError
from emo.data.dataset import load_dataset
from emo.data.split import read_split
from emo.report.groups import report_groups
from emo.report.page import write
from emo.report.tables import build
from emo.studies.matrix import CELLS

from tables import video_frame, write_dataset

TARGETS = ("valence", "arousal")
VIDEOS = [f"v{i}" for i in range(6)]
STARTS = np.arange(20.0)
# v5 has no culture; v9 is a training video: Greek has no test window, so no row
CULTURE = {"v0": "German", "v1": "German", "v2": "Chinese", "v3": "Chinese", "v4": "Chinese", "v9": "Greek"}
GENDER = {v: "f" if i % 2 else "m" for i, v in enumerate(VIDEOS)}


def _rows(cell, seeds) -> list[dict]:
    """Rows as `collect` makes them for `cell`, one per seed (their logged metrics play no part here)."""
    return [
        {
            "cell": cell.name,
            "table": cell.table,
            "row": cell.row,
            "arch": cell.arch,
            "seed": s,
            "window": cell.window,
            "label": cell.settings.get("label", "last" if cell.family == "fusion" else "mean"),
            "run_id": f"{cell.name}#{s}",
            "source_run": f"{cell.name}#{s}",
            "published_key": cell.published_key,
            "data_source": "synthetic",
            "data_fingerprint": "f1",
            "split_hash": "h1",
            **{
                f"{split}_{m}_{t}": 0.2 + 0.01 * s
                for split in ("dev", "test")
                for m in ("mae", "rmse", "ccc", "ccc_per_recording")
                for t in TARGETS
            },
        }
        for s in seeds
    ]


def _predicted(noise: float, seed: int) -> pd.DataFrame:
    """A run's predictions/test.parquet for windows of 1 s starting each second of VIDEOS."""
    truth = np.random.default_rng(0).uniform(-1, 1, (len(VIDEOS) * len(STARTS), 2))
    guess = truth + np.random.default_rng(seed).normal(0, noise, truth.shape)
    return pd.DataFrame(
        {
            "video_id": np.repeat(VIDEOS, len(STARTS)),
            "start": np.tile(STARTS, len(VIDEOS)),
            "end": np.tile(STARTS, len(VIDEOS)) + 1.0,
            "valence": guess[:, 0],
            "arousal": guess[:, 1],
            "true_valence": truth[:, 0],
            "true_arousal": truth[:, 1],
        }
    )


def _rmse(p: pd.DataFrame, t: str) -> float:
    return float(np.sqrt(np.mean((p[t].to_numpy() - p[f"true_{t}"].to_numpy()) ** 2)))


def _ccc(p: pd.DataFrame, t: str) -> float:
    x, y = p[f"true_{t}"].to_numpy(), p[t].to_numpy()
    return 2 * np.mean((x - x.mean()) * (y - y.mean())) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def _of(p: pd.DataFrame, mapping: dict, value: str) -> pd.DataFrame:
    """The windows of `p` whose video has `value` in `mapping`, picked window by window."""
    return p[[mapping.get(v) == value for v in p["video_id"]]]


@pytest.fixture
def audio_two_seeds():
    audio = CELLS["audio-1s/emo"]
    tables = {f"{audio.name}#{s}": _predicted(0.2 + 0.1 * s, s) for s in (0, 1)}
    return pd.DataFrame(_rows(audio, (0, 1))), tables


def test_each_groups_windows_are_exactly_the_test_windows_of_its_videos_and_they_add_up(audio_two_seeds):
    frame, tables = audio_two_seeds
    report = build(frame, predictions=tables.__getitem__, groups={"culture": CULTURE, "gender": GENDER})
    numbers = report.numbers["groups"]
    single = numbers[numbers["model"] == "audio"].set_index(["group_name", "group"])
    assert list(single.index) == [("culture", "Chinese"), ("culture", "German"), ("gender", "f"), ("gender", "m")]

    windows = tables["audio-1s/emo#0"]
    with_culture = windows[[v in CULTURE for v in windows["video_id"]]]
    assert single.loc[("culture", "Chinese"), "windows"] == 3 * 20  # v2, v3, v4: 20 windows each
    assert single.loc[("culture", "German"), "windows"] == 2 * 20
    assert single.loc["culture", "windows"].sum() == len(with_culture) == len(windows) - 20  # v5: no culture
    assert single.loc["gender", "windows"].sum() == len(windows)  # every video has a gender
    assert single.loc[("culture", "Chinese"), "recordings"] == 3

    for value in ("Chinese", "German"):
        per_seed = [_rmse(_of(tables[f"audio-1s/emo#{s}"], CULTURE, value), "arousal") for s in (0, 1)]
        row = single.loc[("culture", value)]
        assert row["test_rmse_arousal_mean"] == pytest.approx(np.mean(per_seed), rel=1e-9)
        assert row["test_rmse_arousal_std"] == pytest.approx(np.std(per_seed, ddof=1), rel=1e-9)
        ccc = np.mean([_ccc(_of(tables[f"audio-1s/emo#{s}"], CULTURE, value), "valence") for s in (0, 1)])
        assert row["test_ccc_valence_mean"] == pytest.approx(ccc, rel=1e-9)

    ensemble = numbers[numbers["model"] == "audio, ensemble of 2 seeds"].set_index(["group_name", "group"])
    mean = tables["audio-1s/emo#0"].copy()
    mean[list(TARGETS)] = (mean[list(TARGETS)] + tables["audio-1s/emo#1"][list(TARGETS)]) / 2
    german = ensemble.loc[("culture", "German")]
    assert german["seeds"] == 2 and np.isnan(german["test_rmse_valence_std"])
    assert german["test_rmse_valence_mean"] == pytest.approx(_rmse(_of(mean, CULTURE, "German"), "valence"), rel=1e-9)
    assert any(n.startswith("1 test recording(s) have no culture") and "(v5)" in n for n in report.notes)
    assert report.provenance["groups"] == "culture (Chinese, German, Greek); gender (f, m)"


def test_the_like_for_like_comparison_is_also_given_per_group(tmp_path):
    fusion, partner = CELLS["fusion1-1s/emo"], CELLS["video-1s-avg-last/emo"]
    frame = pd.DataFrame(_rows(fusion, (0, 1)) + _rows(partner, (0, 1)))
    tables = {
        f"{c.name}#{s}": _predicted(noise, 10 * s + k)
        for k, (c, noise) in enumerate([(fusion, 0.2), (partner, 0.3)])
        for s in (0, 1)
    }
    report = build(frame, predictions=tables.__getitem__, resamples=200, groups={"culture": CULTURE})
    paths = write(report, tmp_path, "report")

    def mean_rmse(p):
        return np.mean([_rmse(p, t) for t in TARGETS])

    expected = {
        value: np.mean(
            [
                mean_rmse(_of(tables[f"{fusion.name}#{s}"], CULTURE, value))
                - mean_rmse(_of(tables[f"{partner.name}#{s}"], CULTURE, value))
                for s in (0, 1)
            ]
        )
        for value in ("Chinese", "German")
    }
    got = report.comparison.per_group
    assert list(got) == ["culture = Chinese", "culture = German"]
    assert [got[f"culture = {v}"]["difference"] for v in expected] == pytest.approx(list(expected.values()))
    assert [got[f"culture = {v}"]["windows"] for v in expected] == [60, 40]
    assert got["culture = German"]["recordings"] == 2

    shown = {r[0]: r for r in _markdown(paths["report.md"]).rows if r and r[0].startswith("culture = ")}
    assert [shown[f"culture = {v}"][5] for v in expected] == [f"{d:+.4f}" for d in expected.values()]
    assert "## Fusion against video, like for like, per group" in paths["report.md"].read_text()


def test_groups_come_from_the_runs_data_folder_or_a_note_says_how_to_give_them(audio_two_seeds, tmp_path):
    frame, tables = audio_two_seeds
    meta = {"name": "tiny", "fps": 5, "label_scale": 1, "groups": {"culture": CULTURE}}
    folder = write_dataset(tmp_path / "ds", video_frame({"v0": 3}, dim=1), meta=meta)
    report = build(frame.assign(data_folder=str(folder)), predictions=tables.__getitem__)
    assert report.provenance["groups"] == f"culture (Chinese, German, Greek) from {folder / 'meta.json'}"
    assert set(report.numbers["groups"]["group"]) == {"Chinese", "German"}

    away = build(frame.assign(data_folder="/nowhere/ds"), predictions=tables.__getitem__)
    assert "groups" not in away.tables and "groups" not in away.provenance
    assert [n for n in away.notes if "per group" in n] == [
        "No results per group: the runs' data folder (/nowhere/ds) is not on this machine. Pass "
        "`emo report --data DIR` (the runs' dataset) to read its meta.json groups."
    ]

    plain = write_dataset(tmp_path / "plain", video_frame({"v0": 3}, dim=1))  # a meta.json without groups
    none = build(frame.assign(data_folder=str(plain)), predictions=tables.__getitem__)
    assert "groups" not in none.tables and not [n for n in none.notes if "group" in n]


def test_malformed_groups_in_meta_json_are_an_error_that_names_the_file(tmp_path):
    meta = {"name": "tiny", "fps": 5, "groups": {"culture": ["German", "Chinese"]}}
    folder = write_dataset(tmp_path / "ds", video_frame({"v0": 3}, dim=1), meta=meta)
    with pytest.raises(DataError, match=r"ds/meta.json: group \"culture\" must map video ids to values"):
        report_groups(pd.DataFrame(), folder)


def test_a_page_with_ensembles_and_groups_fits_a_1400_px_wide_window(audio_two_seeds, tmp_path):
    frame, tables = audio_two_seeds
    paths = write(build(frame, predictions=tables.__getitem__, groups={"culture": CULTURE}), tmp_path, "report")
    layout = _layout_in_chromium(paths["report.html"], tmp_path)
    assert [t["id"] for t in layout["tables"]] == ["table-audio", "table-best", "table-groups"]
    assert [t["id"] for t in layout["tables"] if t["scrolls"] or t["right"] > layout["width"]] == []


# ---------------------------------------------------------------- the cross-group protocol: emo data split

CULTURES = {
    **{f"de{i}": "German" for i in range(4)},
    **{f"hu{i}": "Hungarian" for i in range(4)},
    **{f"cn{i}": "Chinese" for i in range(3)},
    "gr0": "Greek",
}


@pytest.fixture
def cultures(tmp_path):
    meta = {"name": "tiny", "fps": 5, "label_scale": 1, "groups": {"culture": CULTURES}}
    return write_dataset(tmp_path / "ds", video_frame({v: 6 for v in CULTURES}, dim=1), meta=meta)


def _split(folder, *args):
    return CliRunner().invoke(main, ["data", "split", str(folder), *args])


def test_cross_group_split_trains_on_some_values_tests_on_another_and_excludes_the_rest(cultures):
    done = _split(cultures, "--train-groups", "culture=German,Hungarian", "--test-groups", "culture=Chinese")
    assert done.exit_code == 0, done.output
    body = json.loads((cultures / "split.json").read_text())
    assert body["cross_group"] == {
        "group": "culture",
        "train": ["German", "Hungarian"],
        "test": ["Chinese"],
        "dev_share": 0.15,
    }
    assert body["test"] == ["cn0", "cn1", "cn2"] and body["excluded"] == ["gr0"]
    assert sorted(body["train"] + body["dev"]) == sorted(v for v, c in CULTURES.items() if c in ("German", "Hungarian"))
    assert sorted(CULTURES[v] for v in body["dev"]) == ["German", "Hungarian"]  # 15% of 4 each: one apiece
    assert "by group culture: train (and dev) German, Hungarian; test Chinese" in done.output

    split = load_dataset(cultures).split  # the excluded video is in no split, and that is not an error
    assert (split.test, split.excluded) == (("cn0", "cn1", "cn2"), ("gr0",))
    again = _split(cultures, "--train-groups", "culture=Hungarian,German", "--test-groups", "culture=Chinese")
    assert again.exit_code == 0 and json.loads((cultures / "split.json").read_text()) == body  # same seed, same
    (cultures / "split.json").unlink()
    other = _split(
        cultures, "--train-groups", "culture=German,Hungarian", "--test-groups", "culture=Chinese", "--split-seed", "4"
    )
    assert other.exit_code == 0 and json.loads((cultures / "split.json").read_text())["dev"] != body["dev"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["culture=German", "cultur=Chinese"], "--train-groups names group 'culture' and --test-groups 'cultur'"),
        (
            ["region=German", "region=Chinese"],
            "ds/meta.json: no group 'region' (it has 'culture'). Name a group of meta.json in --train-groups",
        ),
        (
            ["culture=German,french", "culture=Chinese"],
            "ds/meta.json: group 'culture' has no value 'french' (its values: Chinese, German, Greek, Hungarian)",
        ),
        (["culture=German", "culture=German"], "culture=German is in both --train-groups and --test-groups"),
        (["culture", "culture=Chinese"], "--train-groups 'culture': write a group of meta.json and its values as"),
    ],
)
def test_cross_group_split_refuses_what_meta_json_lacks_in_one_paragraph(cultures, args, message):
    done = _split(cultures, "--train-groups", args[0], "--test-groups", args[1])
    assert done.exit_code == 2 and "Traceback" not in done.output
    assert message in " ".join(done.output.split())
    assert not (cultures / "split.json").exists()


def test_cross_group_split_never_replaces_a_split_runs_may_have_used(cultures):
    load_dataset(cultures)  # the 70/15/15 split, written on first use
    before = (cultures / "split.json").read_text()
    done = _split(cultures, "--train-groups", "culture=German", "--test-groups", "culture=Chinese")
    assert done.exit_code == 2 and "already holds another split" in done.output and "Move it aside" in done.output
    assert (cultures / "split.json").read_text() == before


def test_a_split_json_written_before_the_protocol_loads_as_it_did(tmp_path):
    body = {"seed": 3, "ratios": [0.7, 0.15, 0.15], "train": ["a", "b", "c"], "dev": ["d"], "test": ["e"]}
    (tmp_path / "split.json").write_text(json.dumps(body))
    split = read_split(tmp_path / "split.json")
    assert split.to_json() == body  # written back, it has no new keys
    assert split.hash == "601a263954c1"  # the hash emo logged for it before the protocol existed
    assert (split.excluded, split.cross_group) == ((), None)
