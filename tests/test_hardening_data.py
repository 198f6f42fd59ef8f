"""Odd, damaged or misaligned input ends in a clear error or a named warning, never a silent wrong answer."""

import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from emo.cli import main
from emo.core.errors import DataError
from emo.data.dataset import load_dataset
from emo.data.inputs import build_inputs
from emo.data.summary import summarize
from emo.data.tables import read_table

from tables import audio_frame, video_frame, write_dataset

VIDEOS = {f"v{i}": 20 for i in range(6)}  # 4 s each at 5 fps


def fusion_folder(tmp_path, shift: dict[str, float]):
    """Six videos with an audio_1s table whose timestamps are moved by `shift[video]` seconds."""
    audio = audio_frame({v: n / 5 for v, n in VIDEOS.items()})
    audio["timestamp"] += audio["filename"].str[:-4].map(shift).fillna(0.0)
    return write_dataset(tmp_path / "ds", video_frame(VIDEOS, dim=2), audio={1: audio})


def message(fn) -> str:
    with pytest.raises(DataError) as exc:
        fn()
    assert "np.str_" not in str(exc.value)
    return str(exc.value)


# --- item 6: fusion without audio ---------------------------------------------------------------------------


def test_audio_on_another_clock_fails_fusion_and_the_check_naming_the_table_and_the_time_bases(tmp_path):
    folder = fusion_folder(tmp_path, {v: 100.0 for v in VIDEOS})
    msg = message(lambda: build_inputs(load_dataset(folder), "fusion", window_s=1))
    assert "audio_1s.csv" in msg and "time bases" in msg and "split" in msg
    assert "frames from 0.00 to 3.80 s and audio rows from 100.00" in msg
    result = CliRunner().invoke(main, ["data", "check", str(folder)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "audio_1s: no audio row falls inside any 1 s window of the train and dev and test videos" in result.output
    assert "audio_1s 0/20 NO AUDIO" in result.output  # the per-video coverage comes with the error


def test_videos_without_audio_are_named_at_training_start_and_in_the_check(tmp_path, caplog):
    folder = fusion_folder(tmp_path, {"v3": -50.0})
    ds = load_dataset(folder)
    with caplog.at_level(logging.WARNING, logger="emo"):
        build_inputs(ds, "fusion", window_s=1)
    assert any(
        "1 video(s) have no audio row inside any 1 s window" in r.message and "v3" in r.message for r in caplog.records
    ), caplog.text
    out = summarize(ds)
    assert "NO audio row inside any window of 1 video(s): v3" in out
    assert "v0" in out and "audio_1s 18/20" in out and "audio_1s 0/20 NO AUDIO" in out


# --- item 7: duplicate column names ---------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["emb_6", "valence", "timestamp"])
def test_a_duplicated_column_name_in_a_csv_is_an_error_naming_it(tmp_path, column):
    df = video_frame({"a": 4, "b": 4}, dim=7, shuffle=False)
    df.insert(len(df.columns), f"{column}_copy", df[column])
    text = df.to_csv(index=False).replace(f"{column}_copy", column, 1)
    (tmp_path / "video.csv").write_text(text)
    msg = message(lambda: read_table(tmp_path / "video.csv"))
    assert f"'{column}' appears more than once" in msg and "video.csv" in msg


def test_a_duplicated_column_name_in_a_parquet_file_is_an_error_naming_it(tmp_path):
    table = pa.table(
        [
            pa.array(["a", "a"]),
            pa.array([0.0, 0.2]),
            pa.array([0.1, 0.2]),
            pa.array([0.1, 0.2]),
            pa.array([1.0, 2.0]),
            pa.array([3.0, 4.0]),
        ],
        names=["video_id", "timestamp", "valence", "arousal", "emb_0", "emb_0"],
    )
    pq.write_table(table, tmp_path / "video.parquet")
    msg = message(lambda: read_table(tmp_path / "video.parquet"))
    assert "'emb_0' appears more than once" in msg and "video.parquet" in msg


# --- item 9: odd meta.json and split.json values ---------------------------------------------------------------


@pytest.mark.parametrize(
    "meta, expected",
    [
        ({"fps": 1e300}, "fps must be a positive number, got 1e+300"),
        ({"fps": True}, "got true (a true/false value"),
        ({"fps": "5"}, "got '5' (text: write the number without quotes)"),
        ({"fps": 10**400}, "fps must be a positive number"),
        ({"fps": 5, "label_scale": float("inf")}, "label_scale must be a positive number, got inf"),
        ({"fps": 5, "label_scale": False}, "label_scale must be a positive number, got false"),
        (
            {"fps": 5, "synthetic": "false"},
            '"synthetic" must be true or false (a JSON boolean, without quotes), got "false"',
        ),
    ],
)
def test_odd_meta_json_values_are_named_errors(tmp_path, meta, expected):
    folder = write_dataset(tmp_path / "ds", video_frame({"a": 5, "b": 5, "c": 5}, dim=2), meta=meta)
    msg = message(lambda: load_dataset(folder))
    assert expected in msg and "meta.json" in msg, msg


def test_a_boolean_synthetic_flag_is_read_as_it_is(tmp_path):
    folder = write_dataset(
        tmp_path / "ds", video_frame({"a": 5, "b": 5, "c": 5}, dim=2), meta={"fps": 5, "synthetic": False}
    )
    assert load_dataset(folder).synthetic is False


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"train": "S0001", "dev": ["b"], "test": ["c"]}, '"train" must be a list of video ids in quotes'),
        ({"train": ["S0001"], "dev": [7], "test": ["c"]}, '"dev" must be a list of video ids in quotes'),
        ({"train": ["S0001", "S0001"], "dev": ["b"], "test": ["c"]}, "'S0001' is listed twice in train"),
        (["S0001", "b", "c"], "not an object"),
    ],
)
def test_a_split_json_of_the_wrong_shape_is_a_named_error(tmp_path, body, expected):
    folder = write_dataset(tmp_path / "ds", video_frame({"S0001": 5, "b": 5, "c": 5}, dim=2))
    (folder / "split.json").write_text(json.dumps(body))
    msg = message(lambda: load_dataset(folder))
    assert expected in msg and "split.json" in msg, msg


# --- item 11: messages that point the right way ------------------------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_semicolon_or_tab_separated_file_is_read(tmp_path, sep):
    df = video_frame({"a": 3, "b": 2}, dim=2, shuffle=False)
    df.to_csv(tmp_path / "video.csv", index=False, sep=sep)
    t = read_table(tmp_path / "video.csv")
    assert t.video_ids.tolist() == ["a", "b"] and t.dim == 2


def test_a_file_read_as_one_column_says_so(tmp_path):
    video_frame({"a": 3}, dim=1).to_csv(tmp_path / "video.csv", index=False, sep="|")
    msg = message(lambda: read_table(tmp_path / "video.csv"))
    assert "read as a single column named 'video_id|timestamp" in msg


def test_a_decimal_comma_is_named(tmp_path):
    df = video_frame({"a": 3}, dim=1, shuffle=False)
    (tmp_path / "video.csv").write_text(df.to_csv(index=False, sep=";").replace(".", ","))
    assert "decimal comma" in message(lambda: read_table(tmp_path / "video.csv"))


def test_a_column_of_lists_says_one_number_per_cell(tmp_path):
    df = video_frame({"a": 3}, dim=2, shuffle=False)
    df["emb_1"] = [np.array([1.0, 2.0])] * len(df)
    df.to_parquet(tmp_path / "video.parquet")
    msg = message(lambda: read_table(tmp_path / "video.parquet"))
    assert "'emb_1'" in msg and "lists or arrays" in msg and "one number per cell" in msg and "text" not in msg
    audio = audio_frame({"a": 2.0}).assign(mfcc=[[1.0, 2.0, 3.0]] * 4)
    audio.to_parquet(tmp_path / "audio_1s.parquet")
    msg = message(lambda: read_table(tmp_path / "audio_1s.parquet", modality="audio"))
    assert "'mfcc'" in msg and "lists or arrays" in msg  # not silently left out of the features


def test_ids_derived_from_paths_read_as_plain_text_in_messages(tmp_path):
    df = video_frame({"x": 3}, dim=1, shuffle=False).drop(columns="video_id")
    df["path"] = ["clips/S0002/1.png", "clips/S0002/2.png", "clips/S0002/2.png"]
    df["timestamp"] = [0.0, 0.2, 0.2]
    df.to_csv(tmp_path / "video.csv", index=False)
    assert "video 'S0002' has two rows" in message(lambda: read_table(tmp_path / "video.csv"))


# --- item 13: no silent fallbacks ------------------------------------------------------------------------------


def test_an_audio_table_that_is_there_but_unreadable_is_an_error_not_a_fallback(tmp_path):
    folder = write_dataset(
        tmp_path / "ds",
        video_frame({"a": 10, "b": 10, "c": 10}, dim=2),
        audio={2: audio_frame({"a": 2, "b": 2, "c": 2})},
    )
    (folder / "audio_1s.csv").symlink_to(tmp_path / "gone.csv")
    ds = load_dataset(folder)
    msg = message(lambda: build_inputs(ds, "fusion", window_s=1))
    assert "audio_1s.csv" in msg and "does not exist" in msg
    (folder / "audio_1s.csv").unlink()
    (folder / "audio_1s.CSV").write_text("x\n1\n")
    msg = message(lambda: build_inputs(ds, "fusion", window_s=1))
    assert "audio_1s.CSV" in msg and "audio_1s.csv or audio_1s.parquet" in msg


def test_an_unreadable_meta_json_is_an_error_with_the_position(tmp_path):
    folder = write_dataset(tmp_path / "ds", video_frame({"a": 5, "b": 5, "c": 5}, dim=2))
    (folder / "meta.json").write_text('{"fps": 5,\n "label_scale": 1,}')
    msg = message(lambda: load_dataset(folder))
    assert "meta.json: not valid JSON" in msg and "line 2, column" in msg
    (folder / "meta.json").unlink()
    (folder / "meta.json").mkdir()
    assert "meta.json: cannot be read" in message(lambda: load_dataset(folder))


def test_data_check_fails_when_no_window_of_the_asked_length_exists(tmp_path):
    folder = write_dataset(tmp_path / "ds", video_frame({"a": 10, "b": 12, "c": 8}, dim=2))
    result = CliRunner().invoke(main, ["data", "check", str(folder), "--window", "3"])
    assert result.exit_code == 2, result.output
    assert "no window of 3 s (15 frames) exists" in result.output and "at most 2.4 s" in result.output
    assert CliRunner().invoke(main, ["data", "check", str(folder), "--window", "2"]).exit_code == 0


def test_an_extreme_feature_value_is_warned_about_with_its_column_and_row(tmp_path, caplog):
    df = video_frame({"a": 30}, dim=4, shuffle=False)
    df.loc[17, "emb_2"] = 1e38
    df.to_csv(tmp_path / "video.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="emo"):
        read_table(tmp_path / "video.csv")
    warned = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "'emb_2' reaches 1e+38 at row 17 (line 19" in warned[0], warned
    caplog.clear()
    df.loc[17, "emb_2"] = 40.0  # large, but not out of all proportion
    df.to_csv(tmp_path / "video.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="emo"):
        read_table(tmp_path / "video.csv")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_window_longer_than_every_recording_of_a_split_stops_with_their_lengths(tmp_path):
    # 10 recordings of 4-8 s: a 10 s window would make each one window of padding and a few frames
    folder = write_dataset(tmp_path / "ds", video_frame({f"v{i}": 20 + 2 * i for i in range(10)}, dim=2))
    result = CliRunner().invoke(main, ["train", "video", "--data", str(folder), "--window", "10", "--no-track"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "the window of 10 s (50 frames) is longer than every recording of the train split" in result.output
    assert "Use a window of at most" in result.output


def test_a_window_longer_than_some_recordings_warns_with_their_count(tmp_path, caplog):
    lengths = {f"v{i}": 10 if i % 2 else 40 for i in range(10)}  # 2 s and 8 s
    folder = write_dataset(tmp_path / "ds", video_frame(lengths, dim=2))
    ds = load_dataset(folder)
    with caplog.at_level(logging.WARNING, logger="emo.data.inputs"):
        build_inputs(ds, "window", window_s=4, splits=("train",))
    short = sum(lengths[v] == 10 for v in ds.split.train)
    assert (
        f"{short} of {len(ds.split.train)} recordings of the train split are shorter than the 4 s window" in caplog.text
    )
