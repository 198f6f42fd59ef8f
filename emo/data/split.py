"""The video-level train/dev/test split, decided once per dataset and reused ever after.

The split lives in `split.json` in the dataset folder so that every model family, and both
modalities of a fusion, are trained and evaluated on the same videos.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emo.core.config import SPLITS
from emo.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLIT_FILE = "split.json"
RATIOS = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class Split:
    """Which videos are train, dev and test."""

    train: tuple[str, ...]
    dev: tuple[str, ...]
    test: tuple[str, ...]
    seed: int | None = 0
    ratios: tuple[float, ...] = RATIOS
    source: str = field(default="split.json", compare=False)
    # the cross-group protocol: videos of no named group, kept out of every split, and which groups went where
    excluded: tuple[str, ...] = ()
    cross_group: dict | None = field(default=None, compare=False)

    def of(self, name: str) -> tuple[str, ...]:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose train, dev or test.")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLITS}

    @property
    def hash(self) -> str:
        """A short fingerprint of the video assignment (not of the seed), logged with every run."""
        body = json.dumps({k: sorted(getattr(self, k)) for k in SPLITS}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def to_json(self) -> dict:
        """split.json's body; the cross-group keys only where the split has them (older files stay as they are)."""
        extra = {"cross_group": self.cross_group, "excluded": list(self.excluded)} if self.cross_group else {}
        return {
            "seed": self.seed,
            "ratios": list(self.ratios),
            **{name: list(getattr(self, name)) for name in SPLITS},
            **extra,
        }


def make_split(video_ids, seed: int = 0, ratios=RATIOS) -> Split:
    """Shuffle the sorted video ids with `seed` and cut them 70/15/15 (dev and test get one video at least)."""
    ids = np.array(sorted(set(map(str, video_ids))))
    if len(ids) < 3:
        raise DataError(f"the dataset has {len(ids)} video(s); a train/dev/test split by video needs 3 at least.")
    perm = np.random.default_rng(seed).permutation(len(ids))
    n = len(ids)
    n_dev = max(1, int(round(ratios[1] * n)))
    n_test = max(1, int(round(ratios[2] * n)))
    n_train = n - n_dev - n_test
    shuffled = ids[perm].tolist()
    return Split(
        train=tuple(sorted(shuffled[:n_train])),
        dev=tuple(sorted(shuffled[n_train : n_train + n_dev])),
        test=tuple(sorted(shuffled[n_train + n_dev :])),
        seed=seed,
        ratios=tuple(ratios),
        source="new",
    )


def read_split(path: Path) -> Split:
    path = Path(path)
    shape = (
        '{"train": ["id", ...], "dev": [...], "test": [...]}; delete it to split again (earlier runs then '
        "used another split)"
    )
    try:
        body = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. It must hold {shape}."
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read ({type(exc).__name__}: {exc}). It must hold {shape}.") from None
    if not isinstance(body, dict):
        raise DataError(
            f"{path}: not a valid split file: it holds a JSON {type(body).__name__}, not an object. "
            f"It must hold {shape}."
        )
    for name in SPLITS:
        if name not in body:
            raise DataError(f'{path}: not a valid split file: "{name}" is missing. It must hold {shape}.')
    groups = {name: _ids(path, body, name) for name in SPLITS}
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise DataError(f'{path}: "seed" must be a whole number or null, got {json.dumps(seed)}.')
    ratios = body.get("ratios", RATIOS)
    if not isinstance(ratios, list | tuple) or not all(
        isinstance(r, int | float) and not isinstance(r, bool) for r in ratios
    ):
        raise DataError(f'{path}: "ratios" must be a list of numbers like [0.7, 0.15, 0.15], got {json.dumps(ratios)}.')
    cross = body.get("cross_group")
    if cross is not None and not isinstance(cross, dict):
        raise DataError(
            f'{path}: "cross_group" must be an object like {{"group": "culture", "train": [...], "test": [...]}} '
            f"(what `emo data split --train-groups` writes), got {json.dumps(cross)[:60]}."
        )
    excluded = _ids(path, body, "excluded") if "excluded" in body else ()
    return Split(**groups, seed=seed, ratios=tuple(ratios), source=str(path), excluded=excluded, cross_group=cross)


def _ids(path: Path, body: dict, name: str) -> tuple[str, ...]:
    """split.json's list `name` of video ids, checked: a string would be read letter by letter ("S0001" as
    videos 'S', '0', ...)."""
    ids = body[name]
    if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
        what = (
            f"{json.dumps(ids)[:40]}, not a list"
            if not isinstance(ids, list)
            else f"{json.dumps(next(v for v in ids if not isinstance(v, str)))}, not an id in quotes"
        )
        raise DataError(
            f'{path}: "{name}" must be a list of video ids in quotes, like ["S0001", '
            f'"S0002"], but holds {what}. Fix the file, or delete it to split again (earlier runs '
            f"then used another split)."
        )
    return tuple(ids)


def check_split(split: Split, video_ids, where: str) -> None:
    """Every video in the table must be in exactly one split."""
    seen: dict[str, str] = {}
    for name in SPLITS:
        for vid in split.of(name):
            if vid in seen:
                twice = f"is listed twice in {name}" if seen[vid] == name else f"is in both {seen[vid]} and {name}"
                raise DataError(
                    f"{where}: video {str(vid)!r} {twice}. A video must stay in one split, once; fix the "
                    f"file or delete it to split again."
                )
            seen[vid] = name
    kept_out = sorted(set(split.excluded) & seen.keys())
    if kept_out:
        raise DataError(
            f"{where}: video {kept_out[0]!r} is both in {seen[kept_out[0]]} and excluded. An excluded video "
            f"stays out of every split: fix the file, or delete it to split again."
        )
    empty = [name for name in SPLITS if not set(split.of(name)) & set(map(str, video_ids))]
    if empty:
        raise DataError(
            f"{where}: the {' and '.join(empty)} split{'s have' if len(empty) > 1 else ' has'} no video "
            f"of this table. Every experiment needs train, dev and test videos: assign some "
            f"(or delete split.json / the split column to let emo split 70/15/15)."
        )
    missing = sorted(set(map(str, video_ids)) - seen.keys() - set(split.excluded))
    if missing:
        raise DataError(
            f"{where}: {len(missing)} video(s) of the table are in no split "
            f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}). The dataset changed after "
            f"the split was made: add them to split.json by hand, or delete split.json to split again "
            f"(runs made before then used another split)."
        )
    extra = sorted(seen.keys() - set(map(str, video_ids)))
    if extra:
        log.warning(
            "%s: %d video(s) in the split are not in the table (%s); ignored.", where, len(extra), ", ".join(extra[:5])
        )


def load_or_create_split(folder: Path, video_ids, *, seed: int = 0, column: dict[str, str] | None = None) -> Split:
    """The dataset's split: the table's `split` column, else `split.json`, else a new one written there."""
    folder = Path(folder)
    if column is not None:
        groups = {name: tuple(sorted(v for v, s in column.items() if s == name)) for name in SPLITS}
        split = Split(**groups, seed=None, source="split column")
        check_split(split, video_ids, "the table's 'split' column")
        return split
    path = folder / SPLIT_FILE
    if path.exists():
        split = read_split(path)
        check_split(split, video_ids, str(path))
        if split.seed is not None and split.seed != seed:
            log.info("%s was made with seed %s; it is reused as it is (seed %s asked).", path, split.seed, seed)
        return split
    split = make_split(video_ids, seed)
    write_split(path, split)
    log.info("wrote %s (%s)", path, split.sizes())
    return split


def write_split(path: Path, split: Split) -> None:
    """Write split.json aside and rename it: a concurrent reader sees no file or a whole one."""
    try:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(split.to_json(), indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot write the split ({exc}). emo writes split.json into the dataset folder "
            f"on first use so that every experiment shares it: make the folder writable."
        ) from None


# ---------------------------------------------------------------- the cross-group protocol

DEV_SHARE = 0.15  # of each training group's videos, as the AVEC importer carves dev from official training


def parse_groups(text: str, option: str) -> tuple[str, tuple[str, ...]]:
    """ "culture=German,Hungarian" -> ("culture", ("German", "Hungarian")); `option` names the flag in errors."""
    name, sep, values = str(text).partition("=")
    picked = tuple(dict.fromkeys(v.strip() for v in values.split(",") if v.strip()))
    if not sep or not name.strip() or not picked:
        raise ConfigError(
            f"{option} {text!r}: write a group of meta.json and its values as NAME=VALUE[,VALUE...], e.g. "
            f"{option} culture=German,Hungarian."
        )
    return name.strip(), picked


def _group(groups: dict[str, dict[str, str]], name: str, values: tuple[str, ...], where: str) -> dict[str, str]:
    """meta.json's group `name` (video id -> value), refusing a name or value it does not have."""
    if name not in groups:
        have = f"it has {', '.join(map(repr, sorted(groups)))}" if groups else 'it has no "groups"'
        raise ConfigError(
            f"{where}: no group {name!r} ({have}). Name a group of meta.json in --train-groups and "
            f'--test-groups, or add it there: "groups": {{"{name}": {{"VIDEO_ID": "VALUE", ...}}}}.'
        )
    known = sorted(set(groups[name].values()))
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ConfigError(
            f"{where}: group {name!r} has no value {unknown[0]!r} (its values: {', '.join(known)}). Write the "
            f"values as meta.json does (case counts), or add the videos of {unknown[0]!r} to the group there."
        )
    return groups[name]


def cross_group_split(
    video_ids,
    groups: dict[str, dict[str, str]],
    train: tuple[str, tuple[str, ...]],
    test: tuple[str, tuple[str, ...]],
    *,
    seed: int = 0,
    dev_share: float = DEV_SHARE,
    where: str = "meta.json",
) -> Split:
    """Train on the videos of some values of a group, test on those of others (e.g. train on German and
    Hungarian recordings, test on Chinese ones). Dev is `dev_share` of each training value's videos, drawn
    with `seed`: nothing that selects a model sees a test group. Videos of neither side are excluded."""
    (name, train_values), (test_name, test_values) = train, test
    if test_name != name:
        raise ConfigError(
            f"--train-groups names group {name!r} and --test-groups {test_name!r}: the protocol splits one "
            f"group's values, so name the same group in both."
        )
    both = sorted(set(train_values) & set(test_values))
    if both:
        raise ConfigError(f"{name}={both[0]} is in both --train-groups and --test-groups: a value is one or the other.")
    mapping = _group(groups, name, train_values + test_values, where)
    ids = np.array(sorted(set(map(str, video_ids))))
    value = np.array([mapping.get(v, "") for v in ids])
    empty = [v for v in train_values + test_values if not (value == v).any()]
    if empty:
        raise ConfigError(
            f"{where}: no video of the table has {name}={empty[0]} (the group names other videos): pick values "
            f"whose videos are in the dataset."
        )
    rng = np.random.default_rng(seed)
    dev = np.concatenate([_carve(ids[value == v], dev_share, rng) for v in sorted(train_values)])
    if not len(dev):  # every training value has 2 videos or fewer: one dev video in all
        dev = rng.permutation(ids[np.isin(value, train_values)])[:1]
    train_ids = np.setdiff1d(ids[np.isin(value, train_values)], dev)
    if not len(train_ids):
        raise ConfigError(
            f"{name}={','.join(train_values)} has {len(dev)} video(s), too few to train and pick a model on: "
            f"train on more values of {name!r}."
        )
    return Split(
        train=tuple(train_ids.tolist()),
        dev=tuple(sorted(dev.tolist())),
        test=tuple(ids[np.isin(value, test_values)].tolist()),
        seed=seed,
        ratios=(0, 0, 0),  # as the importer's official split: not a 70/15/15 split
        source="new",
        excluded=tuple(ids[~np.isin(value, train_values + test_values)].tolist()),
        cross_group={"group": name, "train": list(train_values), "test": list(test_values), "dev_share": dev_share},
    )


def _carve(ids: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """`share` of `ids` (one at least) drawn with `rng`; none of 2 videos or fewer, which training needs whole."""
    return rng.permutation(ids)[: max(1, round(share * len(ids))) if len(ids) > 2 else 0]


def place_split(folder: Path, split: Split) -> Split:
    """Write `split` to the folder's split.json; one already there is kept when it is the same split, else
    refused: runs may have used it."""
    path = Path(folder) / SPLIT_FILE
    if path.exists():
        there = read_split(path)
        if there.hash == split.hash and there.excluded == split.excluded:
            return there
        raise DataError(
            f"{path} already holds another split (hash {there.hash}, seed {there.seed}), which runs may have "
            f"used. Move it aside or delete it to split by group; runs made with it keep its split hash."
        )
    write_split(path, split)
    log.info("wrote %s (%s; excluded %d)", path, split.sizes(), len(split.excluded))
    return read_split(path)
