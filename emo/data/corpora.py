"""The corpora as they are distributed, read into `Recording`s (features and labels in seconds).

One function per layout; each finds its files, pairs labels with features by recording id, reads
times in the unit its format declares (never guessed from magnitudes) and yields one recording at
a time. Alignment onto the grid is `emo.data.align`'s job, writing the folder `emo.data.importer`'s.

| format   | labels                                                           | time unit |
|----------|------------------------------------------------------------------|-----------|
| avec     | `<Partition>_<Culture>_<NN>.csv`, `name;timestamp;arousal;valence[;liking]`, 10 Hz | s |
| afew-va  | `<clip>/<clip>.json`, frames keyed by frame number, V/A in -10..10 | frames / --source-fps |
| affwild2 | `<video>.txt`, `valence,arousal`, line i = frame i, -5 = unlabelled | frames / fps from the name |
| muse     | `arousal/`, `valence/`: `timestamp,value,segment_id` or `Time,value` | ms |
|          | raw `timestamp,<annotator ids>` (fused by the mean)              | s |
| recola   | `arousal/`, `valence/`: ARFF `Instance_name,frameTime,GoldStandard`, 25 Hz | s |

Feature files may be openSMILE CSV (`;`, quoted `name`, `frameTime` in s) or ARFF wherever a
feature folder is accepted; a `timestamp` column is in the format's unit (s, or ms for MuSe).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from emo.core.errors import DataError
from emo.data.align import Series, interpolate, series
from emo.data.importer import Recording
from emo.data.readers import feature_block, numeric_column, read_any, read_delimited

log = logging.getLogger(__name__)

FEATURE_SUFFIXES = (".csv", ".arff", ".txt")
PARTITION_NAMES = {
    "train": "train",
    "training": "train",
    "devel": "dev",
    "dev": "dev",
    "development": "dev",
    "validation": "dev",
    "valid": "dev",
    "val": "dev",
    "test": "test",
}
TIME_COLUMNS = ("frameTime", "timestamp")  # openSMILE's (seconds), and the format's own (its unit)


def _files(folder: Path, what: str, suffixes=FEATURE_SUFFIXES) -> dict[str, Path]:
    """stem -> file of a folder (not recursive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder ({what}). Pass the folder that holds one file per recording.")
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in suffixes}
    if not files:
        raise DataError(f"{folder}: no {'/'.join(suffixes)} files ({what}).")
    return files


def _few(ids) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:5]) + (f" … ({len(ids)} in all)" if len(ids) > 5 else "")


def pair(
    labels: dict[str, Path],
    features: dict[str, Path],
    *,
    labels_where: str,
    features_where: str,
    unlabelled_ok=lambda vid: False,
) -> list[str]:
    """The recording ids, once every label file has its feature file and every feature file its labels
    (except those `unlabelled_ok` allows, such as test recordings whose labels are held back)."""
    no_features = set(labels) - set(features)
    if no_features:
        raise DataError(
            f"{len(no_features)} label file(s) in {labels_where} have no feature file in "
            f"{features_where}: {_few(no_features)}. Feature files must have the label file's name "
            f"(stem); add the missing ones or remove those labels."
        )
    no_labels = {v for v in set(features) - set(labels) if not unlabelled_ok(v)}
    if no_labels:
        raise DataError(
            f"{len(no_labels)} feature file(s) in {features_where} have no label file in "
            f"{labels_where}: {_few(no_labels)}. Check that both folders hold the same recordings."
        )
    return sorted(features)


def feature_series(path: Path, *, timestamp_unit: str) -> tuple[Series, list[str]]:
    """A feature file (openSMILE CSV/ARFF, AVEC or MuSe CSV, with or without a header) as a Series.

    `frameTime` is seconds (openSMILE); `timestamp` is in `timestamp_unit`, the format's own unit.
    """
    df = read_any(path, names=["name", "timestamp"], what="feature file")
    col = next((c for c in TIME_COLUMNS if c in df.columns), None)
    if col is None:
        raise DataError(
            f"{path}: no time column (one of {', '.join(TIME_COLUMNS)}); a feature file needs the time of each row."
        )
    unit = "s" if col == "frameTime" else timestamp_unit
    x, names = feature_block(df, path)
    if df.attrs.get("first_line") == 1 or all(re.fullmatch(r"col\d+", n) for n in names):
        names = [f"emb_{j}" for j in range(len(names))]
    t = numeric_column(df, col, path, f"time in {'seconds' if unit == 's' else 'milliseconds'}")
    # openSMILE writes its last frame twice: a repeated time in a feature file is dropped, with a note
    return series(
        t, x, unit=unit, source=str(path), first_line=df.attrs.get("first_line", 2), column=col, repeats="drop"
    ), names


def _audio(rec_id: str, audio: dict[int, dict[str, Path]], timestamp_unit: str):
    out, names = {}, {}
    for w, files in audio.items():
        if rec_id not in files:
            folder = next(iter(files.values())).parent
            raise DataError(
                f"{folder}: no audio feature file for recording {rec_id!r} (audio_{w}s). Every "
                f"recording needs one in each audio folder."
            )
        out[w], names[w] = feature_series(files[rec_id], timestamp_unit=timestamp_unit)
    return out, names


def audio_folders(specs: dict[int, Path]) -> dict[int, dict[str, Path]]:
    return {w: _files(folder, f"audio features for audio_{w}s") for w, folder in specs.items()}


# --- AVEC / SEWA -------------------------------------------------------------------------------------

_AVEC_NAME = re.compile(r"^(?P<partition>Train|Devel|Test)_(?:(?P<culture>[A-Z]{2})_)?(?P<nn>\d+)$")


def avec(labels: Path, video: Path, audio: dict[int, Path] | None = None) -> Iterator[Recording]:
    """SEWA as shipped for AVEC 2017-2019: partition (and culture) from `<Partition>_<Culture>_<NN>`."""
    label_files = _files(labels, "AVEC label files", (".csv",))
    bad = [s for s in label_files if not _AVEC_NAME.match(s)]
    if bad:
        raise DataError(
            f"{labels}: label file names must look like Train_DE_01.csv (Partition_Culture_NN, or "
            f"Partition_NN for AVEC 2017): {_few(bad)} do not."
        )
    features = _files(video, "video feature files")
    audio_files = audio_folders(audio or {})
    ids = pair(
        label_files,
        features,
        labels_where=str(labels),
        features_where=str(video),
        unlabelled_ok=lambda v: v.startswith("Test_"),
    )
    for vid in ids:
        m = _AVEC_NAME.match(vid)
        lab = None
        if vid in label_files:
            df = read_delimited(
                label_files[vid],
                sep=";",
                names=["name", "timestamp", "arousal", "valence", "liking"],
                what="AVEC label file",
            )
            path = label_files[vid]
            y = np.column_stack([numeric_column(df, c, path, "label") for c in ("valence", "arousal")])
            lab = series(
                numeric_column(df, "timestamp", path, "time in seconds"),
                y,
                unit="s",
                source=str(path),
                first_line=df.attrs["first_line"],
                column="timestamp",
            )
        vs, _ = feature_series(features[vid], timestamp_unit="s")  # AVEC: seconds, like its labels
        aud, names = _audio(vid, audio_files, "s")
        yield Recording(
            vid,
            vs,
            lab,
            PARTITION_NAMES[m["partition"].lower()] if m else None,
            aud,
            names,
            {"culture": m["culture"]} if m and m["culture"] else {},
        )


# --- AFEW-VA -----------------------------------------------------------------------------------------


def normalise_landmarks(points: np.ndarray) -> np.ndarray:
    """(n, P, 2) pixel landmarks -> (n, 2P) features free of the face's position and size.

    Each frame's points are centred on their mean and divided by their root-mean-square distance
    from it, so a face that moves or comes closer keeps its features and only its shape (the
    expression, and the pose) remains.
    """
    centred = points - points.mean(axis=1, keepdims=True)
    scale = np.sqrt((centred**2).sum(axis=2).mean(axis=1))  # (n,)
    return (centred / np.maximum(scale, 1e-9)[:, None, None]).reshape(len(points), -1)


def _afew_clip(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """(frame numbers, (n, 2) valence/arousal, (n, 2P) landmark features or None, frames with landmarks)."""
    try:
        body = json.loads(path.read_text())
        frames = body["frames"]
        keys = sorted(frames, key=int)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: not an AFEW-VA clip file ({type(exc).__name__}: {exc}). It must hold "
            f'{{"frames": {{"00001": {{"valence": …, "arousal": …, "landmarks": [[x, y], …]}}, …}}}}.'
        ) from None
    if not keys:
        raise DataError(f"{path}: the clip has no frames.")
    numbers = np.array([int(k) for k in keys])
    y = np.empty((len(keys), 2))
    for i, k in enumerate(keys):  # a JSON object per frame: no vectorised way in
        try:
            y[i] = float(frames[k]["valence"]), float(frames[k]["arousal"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{path}: frame {k!r} lacks a numeric valence or arousal ({type(exc).__name__}: {exc})."
            ) from None
    marks = [frames[k].get("landmarks") for k in keys]
    sizes = {np.shape(m) for m in marks if m}
    if len(sizes) > 1 or any(len(size) != 2 or size[1] != 2 for size in sizes):
        raise DataError(
            f"{path}: landmarks must be the same number of [x, y] points in every frame; this clip has "
            f"shapes {sorted(sizes)}."
        )
    has = np.array([m is not None and len(m) > 0 for m in marks])
    feats = (
        normalise_landmarks(np.array([m for m in marks if m is not None and len(m) > 0], np.float64))
        if has.any()
        else None
    )
    return numbers, y, feats, has


def table_series(path: Path, fps_of, what: str) -> dict[str, tuple[Series, list[str]]]:
    """A feature table (`video_id`, `frame` or `timestamp` in s, `emb_*` or named features) split by video.
    `fps_of(video_id)` turns frame numbers into seconds (None: the table must have `timestamp`)."""
    from emo.data.tables import read_raw

    path = Path(path)
    df = read_raw(path)
    if "video_id" not in df.columns:
        raise DataError(f"{path}: a {what} table needs a 'video_id' column naming each row's clip or video.")
    emb = sorted((c for c in df.columns if re.fullmatch(r"emb_\d+", str(c))), key=lambda c: int(c[4:]))
    if "timestamp" in df.columns:
        raw, unit = numeric_column(df, "timestamp", path, "time in seconds"), "s"
    elif "frame" in df.columns and fps_of is not None:
        raw, unit = numeric_column(df, "frame", path, "frame number"), "frame"
    else:
        need = "a 'timestamp' (seconds)" + (" or 'frame' column" if fps_of is not None else " column")
        raise DataError(f"{path}: the {what} table needs {need}.")
    x, names = feature_block(df[emb] if emb else df, path)
    out = {}
    for vid, rows in by_video(df["video_id"].astype(str).to_numpy()):
        t = raw[rows] / fps_of(vid) if unit == "frame" else raw[rows]
        out[vid] = (
            series(
                t,
                x[rows],
                unit="s",
                source=f"{path} (video {vid})",
                at=rows_at(path, df, rows),
                column="timestamp" if unit == "s" else "",
                what="time" if unit == "s" else "frame number",
            ),
            names,
        )
    return out


def by_video(ids: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """(video id, its row positions in file order) per video. Videos' rows may interleave, but a
    video's own rows are never reordered: a time going backwards is found, not sorted away."""
    order = np.argsort(ids, kind="stable")
    starts = np.flatnonzero(np.r_[True, ids[order][1:] != ids[order][:-1]])
    for lo, hi in zip(starts, np.r_[starts[1:], len(ids)]):
        yield str(ids[order[lo]]), order[lo:hi]


def rows_at(path: Path, df, rows: np.ndarray):
    """Where row i of a video's rows (`rows`: positions in the file's table) is, for messages."""
    if path.suffix.lower() == ".parquet":
        return lambda i: f"row {rows[i]}"
    first = df.attrs.get("first_line", 2)
    return lambda i: f"line {rows[i] + first}"


def afew_va(clips: Path, *, video: Path | None = None, source_fps: float = 25.0) -> Iterator[Recording]:
    """AFEW-VA clip folders (`<clip>/<clip>.json`, at any depth). Features: the normalised landmarks,
    or per-frame embeddings from a `video` table keyed by clip (`video_id`) and frame number."""
    clips = Path(clips)
    if not clips.is_dir():
        raise DataError(f"{clips}: no such folder. Pass the AFEW-VA folder that holds the clip folders.")
    found = sorted(p for p in clips.rglob("*.json") if p.parent.name == p.stem)
    if not found:
        raise DataError(f"{clips}: no AFEW-VA clip files (<clip>/<clip>.json) below this folder.")
    embeddings = table_series(video, lambda v: source_fps, "video embedding") if video else None
    if embeddings is not None:
        pair(
            {p.stem: p for p in found},
            {v: Path(v) for v in embeddings},
            labels_where=str(clips),
            features_where=str(video),
        )
    for path in found:
        numbers, y, feats, has = _afew_clip(path)
        t = numbers / source_fps
        labels = series(t, y, unit="s", source=str(path), what="frame number")
        if embeddings is not None:
            vs, _ = embeddings[path.stem]
        elif feats is None:
            raise DataError(
                f"{path}: no frame has landmarks, so the clip has no features. Pass --video with "
                f"per-frame embeddings instead."
            )
        else:
            vs = series(t[has], feats, unit="s", source=str(path), what="frame number")
        yield Recording(path.stem, vs, labels)


# --- Aff-Wild2 ---------------------------------------------------------------------------------------

AFFWILD2_SETS = {"Training_Set": "train", "Train_Set": "train", "Validation_Set": "dev", "Test_Set": "test"}
_AFFWILD2_FPS = re.compile(r"^[^-_]+-(?P<fps>\d+(?:\.\d+)?)-\d+x\d+")


def affwild2_fps(name: str, fps: float | None) -> float:
    """The video's frame rate: `--fps` when given, else from `<id>-<fps>-<W>x<H>…`."""
    if fps:
        return float(fps)
    m = _AFFWILD2_FPS.match(name)
    if not m:
        raise DataError(
            f"cannot tell the frame rate of Aff-Wild2 video {name!r} from its name (expected "
            f"<id>-<fps>-<W>x<H>, e.g. 1-30-1280x720). Pass --source-fps."
        )
    return float(m["fps"])


def affwild2(
    annotations: Path, video: Path, *, source_fps: float | None = None, tolerance: int | None = None
) -> Iterator[Recording]:
    """Aff-Wild2 VA annotations (`VA_Set/{Training_Set,Validation_Set}` or
    `VA_Estimation_Challenge/{Train_Set,Validation_Set}`): line i after the header is frame i,
    `-5` marks an unlabelled frame. `_left`/`_right` are two subjects, so two recordings."""
    annotations = Path(annotations)
    if not annotations.is_dir():
        raise DataError(
            f"{annotations}: no such folder. Pass the Aff-Wild2 annotations folder (holding VA_Set or "
            f"VA_Estimation_Challenge)."
        )
    label_files, partition = {}, {}
    for path in sorted(annotations.rglob("*.txt")):
        part = next((AFFWILD2_SETS[p] for p in path.parts if p in AFFWILD2_SETS), None)
        if part is None:
            continue
        if path.stem in label_files:
            raise DataError(f"{path}: video {path.stem!r} is annotated twice (also {label_files[path.stem]}).")
        label_files[path.stem], partition[path.stem] = path, part
    if not label_files:
        raise DataError(
            f"{annotations}: no annotation files in a Training_Set/Train_Set or Validation_Set folder below it."
        )
    fps_of = {v: affwild2_fps(v, source_fps) for v in label_files}
    video = Path(video)
    if video.is_dir():
        files = _files(video, "Aff-Wild2 feature files")
        pair(label_files, files, labels_where=str(annotations), features_where=str(video))
        embeddings = None
    else:
        embeddings = table_series(video, lambda v: fps_of.get(v) or affwild2_fps(v, source_fps), "video embedding")
        pair(label_files, {v: Path(v) for v in embeddings}, labels_where=str(annotations), features_where=str(video))
    for vid, path in label_files.items():
        df = read_delimited(path, sep=",", what="Aff-Wild2 annotation file")
        if [c.lower() for c in df.columns[:2]] != ["valence", "arousal"]:
            raise DataError(
                f"{path}: the first line must be 'valence,arousal' (the Aff-Wild2 VA layout); it is "
                f"{','.join(df.columns)!r}."
            )
        y = np.column_stack([numeric_column(df, c, path, "label") for c in df.columns[:2]])
        y[(y == -5).any(axis=1)] = np.nan  # -5: no annotation for this frame
        fps = fps_of[vid]
        labels = series(np.arange(len(y)) / fps, y, unit="s", source=str(path))
        if embeddings is not None:
            vs = embeddings[vid][0]
        else:
            vs = feature_series(files[vid], timestamp_unit="s")[0]
        frames = int(round(vs.times[-1] * fps)) + 1
        tol = tolerance if tolerance is not None else max(10, int(0.02 * len(y)))
        if abs(frames - len(y)) > tol:
            raise DataError(
                f"{path}: {len(y)} annotated frames, but the features of {vid!r} run to frame "
                f"{frames} ({abs(frames - len(y))} apart, more than the tolerance of {tol}). Check that "
                f"the features belong to this video and its frame rate ({fps:g} fps); --tolerance "
                f"sets how many frames may differ."
            )
        yield Recording(vid, vs, labels, partition[vid])


# --- MuSe --------------------------------------------------------------------------------------------


def muse_labels(path: Path) -> Series:
    """One MuSe label file in any of its three shapes, as a one-column Series.

    `timestamp,value[,segment_id]` (challenge) and `Time,value` (fused) are in milliseconds; raw
    `timestamp,<annotator ids>` is in seconds, fused here by the mean of the annotators present.
    """
    df = read_delimited(path, sep=",", what="MuSe label file")
    cols = {c.lower(): c for c in df.columns}
    if "value" in cols:
        tcol = cols.get("timestamp") or cols.get("time")
        if tcol is None:
            raise DataError(f"{path}: a MuSe label file with a 'value' column needs 'timestamp' or 'Time' (ms).")
        return series(
            numeric_column(df, tcol, path, "time in milliseconds"),
            numeric_column(df, cols["value"], path, "label"),
            unit="ms",
            source=str(path),
            column=tcol,
        )
    if "timestamp" not in cols:
        raise DataError(
            f"{path}: not a MuSe label file: it needs 'timestamp,value[,segment_id]', 'Time,value' or "
            f"'timestamp,<annotator ids>' columns, and has {', '.join(df.columns)}."
        )
    raters = [c for c in df.columns if c != cols["timestamp"] and c.lower() != "segment_id"]
    if not raters:
        raise DataError(f"{path}: a raw MuSe label file needs annotator columns after 'timestamp'.")
    ratings = np.column_stack([numeric_column(df, c, path, f"rating of annotator {c}") for c in raters])
    with np.errstate(all="ignore"):
        fused = np.nanmean(ratings, axis=1)
    log.info("%s: %d annotators fused by their mean per time step", path, len(raters))
    return series(
        numeric_column(df, cols["timestamp"], path, "time in seconds"),
        fused,
        unit="s",
        source=str(path),
        column=cols["timestamp"],
    )


def combine(valence: Series, arousal: Series) -> Series:
    """Two one-dimension label series as one (valence, arousal) series on the union of their times."""
    if len(valence.times) == len(arousal.times) and np.allclose(valence.times, arousal.times, rtol=0, atol=1e-9):
        return replace(arousal, values=np.column_stack([valence.values, arousal.values]))
    times = np.union1d(valence.times, arousal.times)
    return replace(
        arousal, times=times, values=np.column_stack([interpolate(valence, times), interpolate(arousal, times)])
    )


def read_partitions(path: Path) -> dict[str, str]:
    """`Id,Partition` (any case) -> {id: train | dev | test}."""
    df = read_delimited(path, sep=",", what="partition file")
    cols = {c.lower(): c for c in df.columns}
    if "id" not in cols or "partition" not in cols:
        raise DataError(f"{path}: a partition file needs 'Id' and 'Partition' columns; it has {', '.join(df.columns)}.")
    out = {}
    for row, (vid, part) in enumerate(zip(df[cols["id"]].astype(str), df[cols["partition"]].astype(str))):
        name = PARTITION_NAMES.get(part.strip().lower())
        if name is None:
            raise DataError(f"{path}: partition {part!r} at line {row + 2} is not one of train, devel, test.")
        out[vid.strip()] = name
    return out


def _dimension_files(labels: Path, fmt: str) -> tuple[dict[str, Path], dict[str, Path]]:
    labels = Path(labels)
    missing = [d for d in ("valence", "arousal") if not (labels / d).is_dir()]
    if missing:
        raise DataError(
            f"{labels}: no {' and no '.join(missing)} folder. {fmt} labels come as one folder per "
            f"dimension (arousal/, valence/) with one file per recording."
        )
    val = _files(labels / "valence", f"{fmt} valence labels")
    aro = _files(labels / "arousal", f"{fmt} arousal labels")
    one_only = set(val) ^ set(aro)
    if one_only:
        raise DataError(
            f"{labels}: recordings with only one of valence/ and arousal/: {_few(one_only)}. Every "
            f"recording needs both."
        )
    return val, aro


def muse(
    labels: Path, video: Path, *, audio: dict[int, Path] | None = None, partition: Path | None = None
) -> Iterator[Recording]:
    """MuSe label folders (`arousal/`, `valence/`); feature files with `timestamp` in ms."""
    val, aro = _dimension_files(labels, "MuSe")
    features = _files(video, "video feature files")
    parts = read_partitions(partition) if partition else {}
    test = {v for v, p in parts.items() if p == "test"}
    ids = pair(aro, features, labels_where=str(labels), features_where=str(video), unlabelled_ok=lambda v: v in test)
    if parts:
        absent = [v for v in ids if v not in parts]
        if absent:
            raise DataError(
                f"{partition}: recordings {_few(absent)} are in no partition. Add them, or import "
                f"without --partition to let emo split by video."
            )
    audio_files = audio_folders(audio or {})
    for vid in ids:
        lab = combine(muse_labels(val[vid]), muse_labels(aro[vid])) if vid in aro else None
        vs, _ = feature_series(features[vid], timestamp_unit="ms")
        aud, names = _audio(vid, audio_files, "ms")
        yield Recording(vid, vs, lab, parts.get(vid), aud, names)


# --- RECOLA ------------------------------------------------------------------------------------------

_RECOLA_NAME = re.compile(r"^(?P<partition>train|dev|test)_\d+$")


def recola_labels(path: Path) -> Series:
    df = read_any(path, sep=",", what="RECOLA gold standard")
    cols = {c.lower(): c for c in df.columns}
    value = cols.get("goldstandard") or next(
        (c for c in df.columns if c.lower() not in ("instance_name", "name", "frametime", "timestamp")), None
    )
    tcol = cols.get("frametime") or cols.get("timestamp")
    if value is None or tcol is None:
        raise DataError(
            f"{path}: a RECOLA gold standard needs 'frameTime' and 'GoldStandard' columns; it has "
            f"{', '.join(df.columns)}."
        )
    return series(
        numeric_column(df, tcol, path, "time in seconds"),
        numeric_column(df, value, path, "label"),
        unit="s",
        source=str(path),
        first_line=df.attrs.get("first_line", 2),
        column=tcol,
    )


def recola(labels: Path, video: Path, *, audio: dict[int, Path] | None = None) -> Iterator[Recording]:
    """RECOLA (AVEC 2016) gold standards, `arousal/` and `valence/` ARFF files per recording
    (`train_1`, `dev_1`, `test_1`, …: the partition is the name's prefix)."""
    val, aro = _dimension_files(labels, "RECOLA")
    features = _files(video, "video feature files")
    ids = pair(
        aro,
        features,
        labels_where=str(labels),
        features_where=str(video),
        unlabelled_ok=lambda v: v.startswith("test_"),
    )
    audio_files = audio_folders(audio or {})
    for vid in ids:
        m = _RECOLA_NAME.match(vid)
        lab = combine(recola_labels(val[vid]), recola_labels(aro[vid])) if vid in aro else None
        vs, _ = feature_series(features[vid], timestamp_unit="s")  # AVEC 2016: seconds
        aud, names = _audio(vid, audio_files, "s")
        yield Recording(vid, vs, lab, m["partition"] if m else None, aud, names)


# --- plain tables (your own recordings) -----------------------------------------------------------------


def _label_table(path: Path):
    """A plain label table: CSV through the corpus files' reader (a line cut short is an error there;
    ids stay text), parquet as it is."""
    if path.suffix.lower() == ".csv":
        return read_delimited(path, what="label table", text=("video_id",), quote='"')
    from emo.data.tables import read_raw

    return read_raw(path)


def _label_columns(df, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n,) times in seconds and (n, 2) valence, arousal of a label table, in file order."""
    y = np.column_stack([numeric_column(df, c, path, "label") for c in ("valence", "arousal")])
    return numeric_column(df, "timestamp", path, "time in seconds"), y


def plain_labels(path: Path) -> dict[str, Series]:
    """`video_id,timestamp,valence,arousal` in one table, or one `<video_id>.csv` (`timestamp,valence,arousal`)
    per video; times in seconds, each video's rows in time order (never sorted: see `by_video`)."""
    path = Path(path)
    if path.is_dir():
        out = {}
        for vid, f in _files(path, "label files", (".csv",)).items():
            df = _label_table(f)
            out[vid] = series(
                *_label_columns(df, f), unit="s", source=str(f), first_line=df.attrs["first_line"], column="timestamp"
            )
        return out
    df = _label_table(path)
    missing = [c for c in ("video_id", "timestamp", "valence", "arousal") if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: a label table needs the columns video_id, timestamp (s), valence, arousal; "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing."
        )
    t, y = _label_columns(df, path)
    return {
        vid: series(
            t[rows], y[rows], unit="s", source=f"{path} (video {vid})", at=rows_at(path, df, rows), column="timestamp"
        )
        for vid, rows in by_video(df["video_id"].astype(str).to_numpy())
    }


def plain_tables(labels: Path, video: Path, *, audio: dict[int, Path] | None = None) -> Iterator[Recording]:
    """Label tables joined with feature tables keyed by video_id and timestamp (seconds): what
    `emo extract` writes, or any table of the data contract's shape."""
    lab = plain_labels(labels)
    feats = table_series(video, None, "video feature")
    auds = {w: table_series(Path(t), None, f"audio_{w}s feature") for w, t in (audio or {}).items()}
    ids = pair(
        {v: Path(v) for v in lab}, {v: Path(v) for v in feats}, labels_where=str(labels), features_where=str(video)
    )
    for w, table in auds.items():
        absent = [v for v in ids if v not in table]
        if absent:
            raise DataError(
                f"{audio[w]}: no audio rows for {_few(absent)}. Every recording needs its audio_{w}s features."
            )
    for vid in ids:
        yield Recording(
            vid,
            feats[vid][0],
            lab[vid],
            audio={w: t[vid][0] for w, t in auds.items()},
            audio_names={w: t[vid][1] for w, t in auds.items()},
        )
