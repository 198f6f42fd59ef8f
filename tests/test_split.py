"""The split is by video, 70/15/15, deterministic per seed, written once and reused."""

import json

import pytest

from emo.core.errors import DataError
from emo.data.dataset import load_dataset
from emo.data.split import make_split

from tables import video_frame, write_dataset

IDS = [f"v{i:03d}" for i in range(100)]


def test_seventy_fifteen_fifteen_by_video_with_no_video_in_two_splits():
    s = make_split(IDS, seed=0)
    assert s.sizes() == {"train": 70, "dev": 15, "test": 15}
    assert set(s.train) | set(s.dev) | set(s.test) == set(IDS)
    assert not (set(s.train) & set(s.dev) or set(s.train) & set(s.test) or set(s.dev) & set(s.test))


def test_same_seed_same_split_other_seed_other_split():
    assert make_split(IDS, seed=4) == make_split(list(reversed(IDS)), seed=4)
    assert make_split(IDS, seed=4).hash != make_split(IDS, seed=5).hash


def test_split_json_is_written_on_first_use_and_reused_even_with_another_seed(tmp_path):
    folder = write_dataset(tmp_path / "ds", video_frame({f"v{i}": 3 for i in range(20)}, dim=1))
    first = load_dataset(folder, split_seed=1).split
    body = json.loads((folder / "split.json").read_text())
    assert body["seed"] == 1 and body["ratios"] == [0.7, 0.15, 0.15] and sorted(body["test"]) == list(first.test)
    assert load_dataset(folder, split_seed=2).split.hash == first.hash
    body["dev"], body["test"] = body["test"], body["dev"]
    (folder / "split.json").write_text(json.dumps(body))
    assert load_dataset(folder).split.dev == tuple(body["dev"])  # hand edits are honoured


def test_a_split_column_takes_precedence_over_split_json(tmp_path):
    df = video_frame({"a": 2, "b": 2, "c": 2, "d": 2}, dim=1)
    df["split"] = df["video_id"].map({"a": "train", "b": "train", "c": "dev", "d": "test"})
    folder = write_dataset(tmp_path / "ds", df)
    split = load_dataset(folder).split
    assert (split.train, split.dev, split.test) == (("a", "b"), ("c",), ("d",))
    assert split.source == "split column"


def test_a_video_missing_from_split_json_is_an_error_that_says_what_to_do(tmp_path):
    folder = write_dataset(tmp_path / "ds", video_frame({f"v{i}": 3 for i in range(6)}, dim=1))
    (folder / "split.json").write_text(json.dumps({"train": ["v0", "v1", "v2"], "dev": ["v3"], "test": ["v4"]}))
    with pytest.raises(DataError, match=r"1 video\(s\) of the table are in no split \(v5\).*delete split.json"):
        load_dataset(folder)


def test_too_few_videos_to_split():
    with pytest.raises(DataError, match="needs 3 at least"):
        make_split(["a", "b"])


def test_a_split_with_no_dev_video_is_an_error_not_a_crash_later(tmp_path):
    df = video_frame({"a": 2, "b": 2, "c": 2}, dim=1)
    df["split"] = df["video_id"].map({"a": "train", "b": "train", "c": "test"})
    with pytest.raises(DataError, match="the dev split has no video"):
        load_dataset(write_dataset(tmp_path / "ds", df))
