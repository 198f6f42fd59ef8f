"""Every defect of the data contract ends in a clear error that names what and where."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from emo.cli import main
from emo.core.errors import DataError
from emo.data.dataset import load_dataset
from emo.data.tables import read_table

from tables import audio_frame, video_frame, write_dataset


def error_of(tmp_path, df, *, name="video.csv", **kw) -> str:
    path = tmp_path / name
    df.to_csv(path, index=False) if name.endswith(".csv") else df.to_parquet(path)
    with pytest.raises(DataError) as exc:
        read_table(path, **kw)
    return str(exc.value)


def test_rows_in_any_order_are_sorted_by_video_then_time(tmp_path):
    df = video_frame({"b": 4, "a": 3}, dim=2, shuffle=True)
    df.to_csv(tmp_path / "video.csv", index=False)
    t = read_table(tmp_path / "video.csv")
    assert t.video_ids.tolist() == ["a", "b"]
    assert t.offsets.tolist() == [0, 3, 7]
    np.testing.assert_allclose(t.times, [0, 0.2, 0.4, 0, 0.2, 0.4, 0.6])
    assert t.features.dtype == np.float32 and t.features.flags.c_contiguous
    row = df[(df.video_id == "b") & (df.timestamp == 0.4)].iloc[0]
    np.testing.assert_allclose(t.features[5], row[["emb_0", "emb_1"]].to_numpy(np.float32))


def test_video_id_is_the_folder_of_the_path_by_default_and_a_pattern_overrides_it(tmp_path):
    df = video_frame({"x": 2}, dim=1).drop(columns="video_id")
    df["path"] = ["clips/0042/00001.png", "clips/0043/00001.png"]
    df.to_csv(tmp_path / "video.csv", index=False)
    assert read_table(tmp_path / "video.csv").video_ids.tolist() == ["0042", "0043"]
    custom = read_table(tmp_path / "video.csv", id_pattern=r"clips/(?P<id>\d\d)")
    assert custom.video_ids.tolist() == ["00"]  # both rows map to "00": then they are one video


def test_audio_id_is_the_file_stem_and_features_are_the_numeric_non_reserved_columns(tmp_path):
    df = audio_frame({"DE_017": 2.0}, dim=2)
    df["name"] = "ignored text"
    df["frame"] = 3
    df.to_csv(tmp_path / "audio_1s.csv", index=False)
    t = read_table(tmp_path / "audio_1s.csv", modality="audio")
    assert t.video_ids.tolist() == ["DE_017"]
    assert t.feature_names == ["feat0_amean", "feat1_amean"]
    assert t.labels is None


def test_numeric_looking_video_ids_keep_their_leading_zeros(tmp_path):
    df = video_frame({"0042": 2, "7": 2}, dim=1)
    df.to_csv(tmp_path / "video.csv", index=False)
    assert read_table(tmp_path / "video.csv").video_ids.tolist() == ["0042", "7"]


def test_frame_index_and_fps_give_the_time(tmp_path):
    df = video_frame({"a": 3}, dim=1, shuffle=False).drop(columns="timestamp")
    df["frame"] = [0, 1, 2]
    df.to_csv(tmp_path / "video.csv", index=False)
    np.testing.assert_allclose(read_table(tmp_path / "video.csv", fps=4).times, [0, 0.25, 0.5])
    assert "fps" in error_of(tmp_path, df)


def test_labels_are_divided_by_the_label_scale(tmp_path):
    df = video_frame({"a": 3}, dim=1, shuffle=False)
    df[["valence", "arousal"]] *= 10
    df.to_csv(tmp_path / "video.csv", index=False)
    t = read_table(tmp_path / "video.csv", label_scale=10)
    np.testing.assert_allclose(t.labels[:, 0], df["valence"] / 10, atol=1e-6)


def test_a_label_outside_the_scale_names_the_row_and_the_option(tmp_path):
    df = video_frame({"a": 5}, dim=1, shuffle=False)
    df.loc[3, "arousal"] = 7.5
    msg = error_of(tmp_path, df)
    assert "'arousal'" in msg and "row 3 (line 5" in msg and "--label-scale 8" in msg and "video.csv" in msg


@pytest.mark.parametrize(
    "defect, expected",
    [
        (lambda df: df.drop(columns="emb_1"), ["emb_1", "missing"]),
        (lambda df: df.drop(columns=[c for c in df.columns if c.startswith("emb_")]), ["no feature columns", "emb_0"]),
        (lambda df: df.drop(columns="arousal"), ["'arousal' is missing"]),
        (lambda df: df.drop(columns=["valence", "arousal"]), ["'valence' and 'arousal' are missing"]),
        (lambda df: df.drop(columns=["timestamp"]), ["no time column"]),
        (lambda df: df.drop(columns=["video_id"]), ["no 'video_id' column", "'path'"]),
        (lambda df: df.assign(emb_2=df["emb_2"].where(df.index != 4, np.nan)), ["'emb_2'", "row 4", "NaN"]),
        (lambda df: df.assign(emb_0=df["emb_0"].where(df.index != 2, np.inf)), ["'emb_0'", "row 2", "inf"]),
        (
            lambda df: df.assign(emb_1=df["emb_1"].astype(object).where(df.index != 6, "oops")),
            ["'emb_1'", "text 'oops'", "row 6 (line 8"],
        ),
        (lambda df: df.assign(valence=df["valence"].where(df.index != 1, np.nan)), ["'valence' is missing", "row 1"]),
        (
            lambda df: df.assign(timestamp=df["timestamp"].where(df.index != 5, df["timestamp"][4])),
            ["two rows at time", "video 'a'", "Remove the duplicate"],
        ),
        (lambda df: df.assign(split=["train"] * 4 + ["test"] * 4), ["video 'a'", "several splits"]),
        (lambda df: df.assign(split="validation"), ["'split'", "'validation'", "train, dev, test"]),
        (lambda df: df.iloc[:0], ["no rows"]),
    ],
)
def test_each_contract_defect_gives_a_message_naming_what_and_where(tmp_path, defect, expected):
    df = video_frame({"a": 8}, dim=3, shuffle=False)
    msg = error_of(tmp_path, defect(df))
    for part in expected:
        assert part in msg, msg
    assert "video.csv" in msg or "no rows" in msg


def test_unreadable_and_missing_files_name_the_file(tmp_path):
    (tmp_path / "video.parquet").write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match=r"video.parquet: cannot be read as a parquet table"):
        read_table(tmp_path / "video.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        read_table(tmp_path / "empty.csv")
    with pytest.raises(DataError, match="nothere.csv: file not found"):
        read_table(tmp_path / "nothere.csv")


def test_an_unmatched_id_pattern_names_the_row_and_the_option(tmp_path):
    df = video_frame({"a": 2}, dim=1).drop(columns="video_id").assign(path="frame.png")
    msg = error_of(tmp_path, df)
    assert "'frame.png'" in msg and "--id-pattern" in msg and "row 0" in msg


def test_videos_in_only_one_modality_are_reported_by_name(tmp_path):
    folder = write_dataset(
        tmp_path / "ds",
        video_frame({"a": 10, "b": 10, "c": 10}, dim=2),
        audio={1: audio_frame({"a": 2, "b": 2, "zz": 2})},
    )
    ds = load_dataset(folder)
    with pytest.raises(DataError) as exc:
        ds.audio(1)
    msg = str(exc.value)
    assert "1 video(s) in audio_1s.csv but not in video.csv (zz)" in msg
    assert "1 video(s) in video.csv but not in audio_1s.csv (c)" in msg


def test_a_dataset_without_audio_says_so_when_audio_is_asked_for(tmp_path):
    ds = load_dataset(write_dataset(tmp_path / "ds", video_frame({"a": 5, "b": 5, "c": 5}, dim=2)))
    with pytest.raises(DataError, match="no audio tables"):
        ds.audio(2)


def test_the_cli_prints_the_message_without_a_traceback_and_exits_nonzero(tmp_path):
    df = video_frame({"a": 5, "b": 5, "c": 5}, dim=2)
    df.loc[0, "valence"] = 4.0
    folder = write_dataset(tmp_path / "ds", df)
    result = CliRunner().invoke(main, ["data", "check", str(folder)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert "--label-scale 4" in result.output


def test_data_check_summarises_a_valid_dataset(tmp_path):
    folder = write_dataset(
        tmp_path / "ds",
        video_frame({f"v{i}": 10 + i for i in range(10)}, dim=4),
        audio={2: audio_frame({f"v{i}": 2 for i in range(10)})},
    )
    result = CliRunner().invoke(main, ["data", "check", str(folder), "--window", "3"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "10 videos, 145 frames, 4-dim features, 5 fps" in out
    assert "train 6 videos" in out and "dev 2 videos" in out and "test 2 videos" in out
    # videos of 10-14 frames are shorter than 15: one window each, padded at the start
    assert "3 s = 15 frames: 20 windows (stride 1), 5 of them padded" in out
    assert "coverage  145 labelled frames, 0 unlabelled, 0 gaps in 10 videos" in out
    assert "audio_2s: 40 rows, 2 features, 10 videos" in out
    assert json.loads((folder / "split.json").read_text())["seed"] == 0


def test_an_index_column_is_not_an_audio_feature_and_text_in_a_feature_column_is_reported(tmp_path):
    df = audio_frame({"a": 3.0}, dim=2)
    df.to_csv(tmp_path / "audio_1s.csv", index=True)  # writes an "Unnamed: 0" column
    assert read_table(tmp_path / "audio_1s.csv", modality="audio").feature_names == ["feat0_amean", "feat1_amean"]
    df["feat1_amean"] = df["feat1_amean"].astype(str)
    df.loc[4, "feat1_amean"] = "1.2.3"
    msg = error_of(tmp_path, df, name="audio_2s.csv", modality="audio")
    assert "'feat1_amean'" in msg and "'1.2.3'" in msg and "row 4" in msg


def test_an_audio_split_column_must_agree_with_the_dataset_split(tmp_path):
    audio = audio_frame({"a": 2, "b": 2, "c": 2})
    audio["split"] = "train"
    folder = write_dataset(tmp_path / "ds", video_frame({"a": 5, "b": 5, "c": 5}, dim=2), audio={1: audio})
    with pytest.raises(DataError, match="Both modalities must share one split"):
        load_dataset(folder).audio(1)


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"fps": "5 fps"}, "fps must be a positive number, got '5 fps'"),
        ({"fps": 5, "label_scale": 0}, "label_scale must be a positive number"),
    ],
)
def test_a_meta_json_value_that_is_not_a_positive_number_is_named(tmp_path, meta, message):
    folder = write_dataset(tmp_path / "ds", video_frame({"a": 5, "b": 5, "c": 5}, dim=2), meta=meta)
    with pytest.raises(DataError, match=message):
        load_dataset(folder)
