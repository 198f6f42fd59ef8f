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
from emo.core.errors import DataError

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
        return {
            "seed": self.seed,
            "ratios": list(self.ratios),
            **{name: list(getattr(self, name)) for name in SPLITS},
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
    groups = {}
    for name in SPLITS:
        if name not in body:
            raise DataError(f'{path}: not a valid split file: "{name}" is missing. It must hold {shape}.')
        ids = body[name]
        # a string would be read letter by letter ("S0001" as videos 'S', '0', ...)
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
        groups[name] = tuple(ids)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise DataError(f'{path}: "seed" must be a whole number or null, got {json.dumps(seed)}.')
    ratios = body.get("ratios", RATIOS)
    if not isinstance(ratios, list | tuple) or not all(
        isinstance(r, int | float) and not isinstance(r, bool) for r in ratios
    ):
        raise DataError(f'{path}: "ratios" must be a list of numbers like [0.7, 0.15, 0.15], got {json.dumps(ratios)}.')
    return Split(**groups, seed=seed, ratios=tuple(ratios), source=str(path))


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
    empty = [name for name in SPLITS if not set(split.of(name)) & set(map(str, video_ids))]
    if empty:
        raise DataError(
            f"{where}: the {' and '.join(empty)} split{'s have' if len(empty) > 1 else ' has'} no video "
            f"of this table. Every experiment needs train, dev and test videos: assign some "
            f"(or delete split.json / the split column to let emo split 70/15/15)."
        )
    missing = sorted(set(map(str, video_ids)) - seen.keys())
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
    try:  # written aside and renamed: a concurrent reader sees no file or a whole one
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(split.to_json(), indent=1) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot write the split ({exc}). emo writes split.json into the dataset folder "
            f"on first use so that every experiment shares it: make the folder writable."
        ) from None
    log.info("wrote %s (%s)", path, split.sizes())
    return split
