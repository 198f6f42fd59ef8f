"""A dataset folder: its meta.json, video table, audio tables and split (see the data contract)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from emo.core.config import AUDIO_WINDOWS
from emo.core.errors import DataError
from emo.data.align import shift_labels
from emo.data.split import Split, load_or_create_split
from emo.data.tables import FrameTable, read_table

log = logging.getLogger(__name__)

SYNTHETIC = {"synthetic": "sewa", "synthetic:sewa": "sewa", "synthetic:afew": "afew"}
AUDIO_TABLES = f"audio_{AUDIO_WINDOWS[0]}s … audio_{AUDIO_WINDOWS[-1]}s"  # the contract's audio tables, for messages


def find_table(folder: Path, stem: str) -> Path | None:
    """`folder/stem.csv` or `folder/stem.parquet`; both at once is ambiguous.

    A table that is there but cannot be read (a link to a missing file, another ending or case) is an
    error, not an absent table: otherwise fusion would quietly take its audio from another table.
    """
    found = [folder / f"{stem}{ext}" for ext in (".csv", ".parquet") if (folder / f"{stem}{ext}").exists()]
    if len(found) > 1:
        raise DataError(
            f"{folder}: both {found[0].name} and {found[1].name} exist; keep one of them so it is clear "
            f"which {stem} table emo reads."
        )
    if found:
        return found[0]
    for ext in (".csv", ".parquet"):
        link = folder / f"{stem}{ext}"
        if link.is_symlink():
            raise DataError(
                f"{link}: a link to {os.readlink(link)}, which does not exist, so the {stem} table "
                f"cannot be read. Restore the file it points to, or remove the link."
            )
    try:
        names = sorted(n for n in os.listdir(folder) if n.lower().startswith(f"{stem.lower()}."))
    except OSError:
        names = []
    if names:
        raise DataError(
            f"{folder}: {', '.join(names[:3])} look{'s' if len(names) == 1 else ''} like the {stem} "
            f"table, but emo reads only {stem}.csv or {stem}.parquet (lower-case, uncompressed). "
            f"Convert or rename it, or move it out of the dataset folder."
        )
    return None


def read_meta(folder: Path) -> dict:
    """meta.json as a dict ({} when there is none); a file that is there but unreadable is an error."""
    path = folder / "meta.json"
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        meta = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (character "
            f"{exc.pos}). Fix it, or delete it and pass --fps / --label-scale."
        ) from None
    except (OSError, ValueError) as exc:  # a folder, no permission, a dead link, not UTF-8 text
        raise DataError(
            f"{path}: cannot be read ({type(exc).__name__}: {exc}). Fix it, or delete it and pass "
            f"--fps / --label-scale."
        ) from None
    if not isinstance(meta, dict):
        raise DataError(f'{path}: must hold a JSON object like {{"name": ..., "fps": 5, "label_scale": 1}}.')
    if "synthetic" in meta and not isinstance(meta["synthetic"], bool):
        # "false" in quotes is a non-empty string: truthy, so a real corpus would be labelled synthetic
        raise DataError(
            f'{path}: "synthetic" must be true or false (a JSON boolean, without quotes), got '
            f"{json.dumps(meta['synthetic'])}."
        )
    return meta


def read_groups(folder: Path) -> dict[str, dict[str, str]]:
    """meta.json's `groups`: group name -> {video id -> group value} ({} when it has none), e.g.
    {"culture": {"vid01": "German"}} as the AVEC importer writes it. Values are read as text."""
    path = Path(folder) / "meta.json"
    groups = read_meta(Path(folder)).get("groups", {})
    shape = '"groups": {"culture": {"vid01": "German", "vid02": "Chinese"}} (a name, then video id -> value)'
    if not isinstance(groups, dict):
        raise DataError(f'{path}: "groups" must be a JSON object like {shape}; got {json.dumps(groups)[:60]}.')
    out = {}
    for name, mapping in groups.items():
        # true/false would read as the text "True"; a list or object as no group at all
        bad = (
            None
            if isinstance(mapping, dict)
            and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in mapping.values())
            else json.dumps(mapping)[:60]
        )
        if bad is not None:
            raise DataError(
                f'{path}: group "{name}" must map video ids to values in text or numbers, like {shape}; got '
                f"{bad}. Fix it, or remove the group from meta.json."
            )
        out[str(name)] = {str(video): str(value) for video, value in mapping.items()}
    return out


def data_home() -> Path:
    """Where the default synthetic corpora are generated: $EMO_DATA_HOME, else ./data."""
    return Path(os.environ.get("EMO_DATA_HOME", "data"))


def resolve_data(data: str | Path) -> Path:
    """The dataset folder for `data`; `synthetic` (or `synthetic:sewa` / `synthetic:afew`) is a small
    synthetic corpus under `data_home()`, generated on first use."""
    key = str(data)
    if key not in SYNTHETIC:
        folder = Path(data)
        if not folder.is_dir():
            raise DataError(
                f"{folder}: no such dataset folder. Pass a folder holding video.csv or video.parquet "
                f"(see the data contract), or `synthetic` for a generated corpus."
            )
        return folder
    from emo.data.synth import SCALES, SynthConfig, synthesize  # only needed for the embedded default

    kind = SYNTHETIC[key]
    folder = data_home() / f"synthetic-{kind}"
    if not (folder / "meta.json").exists():
        log.info(
            "generating a small synthetic %s-like corpus in %s (synthetic data, not the real corpus)",
            kind.upper(),
            folder,
        )
        # written aside and moved in whole: workers started together never read a half-written table
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        synthesize(tmp, SynthConfig(kind=kind, **SCALES["demo"]))
        try:
            tmp.rename(folder)
        except OSError:  # another process got there first: use its copy (identical, same seed)
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


@dataclass
class Dataset:
    """A loaded dataset folder. Audio tables are read on first use and checked against the video table."""

    folder: Path
    meta: dict
    fps: float
    label_scale: float
    video: FrameTable
    split: Split
    audio_id_pattern: str | None = None
    _audio: dict[int, FrameTable] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.folder.name))

    @property
    def groups(self) -> dict[str, dict[str, str]]:
        """meta.json's groups (name -> {video id -> value}), {} when it has none."""
        return read_groups(self.folder)

    @property
    def synthetic(self) -> bool:
        return self.meta.get("synthetic") is True

    def audio_windows(self) -> list[int]:
        """The audio window lengths (seconds) that have a table."""
        return [w for w in AUDIO_WINDOWS if find_table(self.folder, f"audio_{w}s") is not None]

    def audio(self, window_s: int) -> FrameTable:
        """The audio table `audio_{window_s}s`, whose videos must match the video table's."""
        if window_s in self._audio:
            return self._audio[window_s]
        path = find_table(self.folder, f"audio_{window_s}s")
        if path is None:
            have = self.audio_windows()
            raise DataError(
                f"{self.folder}: no audio_{window_s}s.csv or .parquet. "
                + (
                    f"Audio tables exist for windows {have} s: pick one of those."
                    if have
                    else "This dataset has no audio tables (like AFEW-VA): audio and fusion "
                    f"models need {AUDIO_TABLES} tables; use a video model instead."
                )
            )
        table = read_table(path, modality="audio", label_scale=self.label_scale, id_pattern=self.audio_id_pattern)
        only_audio = np.setdiff1d(table.video_ids, self.video.video_ids)
        only_video = np.setdiff1d(self.video.video_ids, table.video_ids)
        if len(only_audio) or len(only_video):
            parts = []
            for ids, here, there in (
                (only_audio, path.name, self.video.source.name),
                (only_video, self.video.source.name, path.name),
            ):
                if len(ids):
                    parts.append(
                        f"{len(ids)} video(s) in {here} but not in {there} "
                        f"({', '.join(ids[:5].tolist())}{' …' if len(ids) > 5 else ''})"
                    )
            raise DataError(
                f"{path}: the audio and video tables disagree on the videos: {'; '.join(parts)}. "
                f"Check that both derive the same ids (pass --audio-id-pattern if the file names differ), "
                f"or remove those videos from both tables."
            )
        if table.split is not None:
            moved = sorted(v for v, name in table.split.items() if v not in self.split.of(name))
            if moved:
                raise DataError(
                    f"{path}: column 'split' puts {len(moved)} video(s) in another split than the "
                    f"dataset's ({self.split.source}), e.g. {str(moved[0])!r}. Both modalities must share "
                    f"one split: drop the audio table's split column or make it agree."
                )
        self._audio[window_s] = table
        return table

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of the tables' bytes, logged with every run."""
        h = hashlib.sha256()
        paths = [self.video.source] + [find_table(self.folder, f"audio_{w}s") for w in self.audio_windows()]
        for path in paths:
            h.update(path.name.encode())
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)
        return h.hexdigest()[:12]


def load_dataset(
    data: str | Path,
    *,
    fps: float | None = None,
    label_scale: float | None = None,
    id_pattern: str | None = None,
    audio_id_pattern: str | None = None,
    split_seed: int = 0,
    label_delay: float = 0.0,
    whole: bool = False,
) -> Dataset:
    """Load a dataset folder: meta.json, the validated video table, and its split (made on first use).

    `whole=True` reads recordings to predict: labels may be absent, and every video is in one split,
    `test` (no split.json is made).

    `label_delay` (seconds) pairs each frame with its video's label `label_delay` later (annotator
    lag); frames whose delayed label falls past the labelled span become unlabelled.
    """
    folder = resolve_data(data)
    meta = read_meta(folder)
    fps, scale = _rate_and_scale(folder, meta, fps, label_scale)
    video = _read_video(folder, fps, scale, id_pattern, whole)
    if fps is None:
        fps = _infer_fps(video)
    if label_delay:
        video = _delay_labels(video, label_delay, fps)
    if whole:
        split = Split(train=(), dev=(), test=tuple(video.video_ids.tolist()), seed=None, source="every recording")
    else:
        split = load_or_create_split(folder, video.video_ids, seed=split_seed, column=video.split)
    return Dataset(
        folder=folder,
        meta=meta,
        fps=fps,
        label_scale=scale,
        video=video,
        split=split,
        audio_id_pattern=audio_id_pattern,
    )


def _rate_and_scale(
    folder: Path, meta: dict, fps: float | None, label_scale: float | None
) -> tuple[float | None, float]:
    """fps and label_scale, each from its option when given, else from meta.json (fps may stay None:
    the timestamps tell it then)."""
    meta_path = folder / "meta.json"
    fps = (
        _positive(fps, "fps", "--fps")
        if fps is not None
        else _positive(meta.get("fps"), "fps", str(meta_path), strict=True)
    )
    scale = (
        _positive(label_scale, "label_scale", "--label-scale")
        if label_scale is not None
        else _positive(meta.get("label_scale", 1.0), "label_scale", str(meta_path), strict=True) or 1.0
    )
    return fps, scale


def _read_video(folder: Path, fps: float | None, scale: float, id_pattern: str | None, whole: bool) -> FrameTable:
    """The folder's video frame table, validated; `whole` (recordings to predict) needs no labels."""
    path = find_table(folder, "video")
    if path is None:
        raise DataError(
            f"{folder}: no video.csv or video.parquet. A dataset folder needs its video frame table "
            f"(see the data contract)."
        )
    return read_table(
        path, modality="video", fps=fps, label_scale=scale, id_pattern=id_pattern, require_labels=not whole
    )


def _delay_labels(video: FrameTable, label_delay: float, fps: float) -> FrameTable:
    """The table with each frame's label taken `label_delay` seconds later (annotator lag)."""
    before = int(video.labelled.sum())
    video = dataclasses.replace(
        video, labels=shift_labels(video.video_ids, video.offsets, video.times, video.labels, label_delay, fps)
    )
    log.info(
        "labels delayed by %g s: %d of %d labelled frames keep a label.",
        label_delay,
        int(video.labelled.sum()),
        before,
    )
    return video


MAX_FPS = 1000.0  # no face-video corpus comes close; a larger value is a typo or a unit mix-up
_RULES = {
    "fps": f"fps is frames per second: a number above 0 and below {MAX_FPS:g} (SEWA and AFEW-VA use 5).",
    "label_scale": "label_scale is the bound S of labels in [-S, S]: a number above 0 (SEWA 1, AFEW-VA 10).",
}


def _positive(value, name: str, where: str, *, strict: bool = False) -> float | None:
    """A positive finite number (fps also below MAX_FPS), or None when absent.

    `strict` (meta.json) takes JSON numbers only: `true` would otherwise read as 1 and "5" as 5.
    An option (`--fps`) may come as text from the command line or a stored parameter.
    """
    if value is None:
        return None
    number = float("nan")
    if isinstance(value, (bool, np.bool_)):
        pass
    elif isinstance(value, (int, float, np.integer, np.floating)) or (isinstance(value, str) and not strict):
        try:
            number = float(value)
        except (ValueError, OverflowError):  # text, or a JSON integer too large for a float
            pass
    if not (0 < number < float("inf")) or (name == "fps" and number >= MAX_FPS):
        if isinstance(value, (bool, np.bool_)):
            shown, kind = json.dumps(bool(value)), " (a true/false value, not a number)"
        elif isinstance(value, str):
            shown, kind = repr(value), " (text: write the number without quotes)" if strict else ""
        else:
            shown, kind = (
                repr(value),
                "" if isinstance(value, (int, float, np.integer, np.floating)) else " (not a number)",
            )
        raise DataError(f"{name} must be a positive number, got {shown}{kind} (from {where}). {_RULES[name]}")
    return number


def _infer_fps(video: FrameTable) -> float:
    """fps from the median time step between frames, when meta.json does not say."""
    same_video = np.diff(video.row_video()) == 0
    steps = np.diff(video.times)[same_video]
    steps = steps[steps > 0]
    if not len(steps):
        raise DataError(
            f'{video.source}: cannot tell the frame rate (no video has two frames). Set "fps" in '
            f"meta.json or pass --fps."
        )
    fps = float(np.round(1.0 / np.median(steps), 3))
    log.info("%s: no fps in meta.json; %g fps inferred from the timestamps.", video.source, fps)
    return fps
