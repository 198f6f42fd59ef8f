"""Reading and validating video frame tables and audio tables (see the data contract).

A table becomes a `FrameTable`: rows sorted by (video, time), one contiguous float32
feature matrix, and `offsets` marking where each video's rows begin. Every later stage
(windows, synchronisation, samples) indexes into these arrays instead of copying them.
Every defect ends in a `DataError` that names the file, the column, the row and what to do.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emo.core.config import SPLITS
from emo.core.errors import DataError

log = logging.getLogger(__name__)

VIDEO_ID_PATTERN = r"(?P<id>[^/\\]+)[/\\][^/\\]+$"  # the folder that holds the frame file
AUDIO_ID_PATTERN = r"(?P<id>[^/\\]+?)(?:\.[^./\\]*)?$"  # the file's stem
RESERVED = {
    "video_id",
    "path",
    "filename",
    "name",
    "timestamp",
    "frameTime",
    "start",
    "end",
    "duration",
    "frame",
    "valence",
    "arousal",
    "split",
}
_INDEX = re.compile(r"^Unnamed: \d+$")  # a DataFrame index written by to_csv(index=True)
_EMB = re.compile(r"^emb_(\d+)$")


@dataclass
class FrameTable:
    """One modality's rows, sorted by (video, time).

    Rows of video `k` (named `video_ids[k]`) are `offsets[k]:offsets[k+1]`.
    `labels` are scaled to [-1, 1], NaN on unlabelled frames; None for an audio table without label columns.
    """

    source: Path
    video_ids: np.ndarray  # (V,) str, sorted
    offsets: np.ndarray  # (V + 1,) int64
    times: np.ndarray  # (N,) float64 seconds
    features: np.ndarray  # (N, D) float32, C-contiguous
    labels: np.ndarray | None  # (N, 2) float32
    feature_names: list[str]
    split: dict[str, str] | None = None  # video id -> split, from a `split` column

    @property
    def n_rows(self) -> int:
        return len(self.times)

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def labelled(self) -> np.ndarray:
        """(N,) bool: rows that carry labels (an unlabelled frame has both labels empty)."""
        if self.labels is None:
            return np.zeros(self.n_rows, bool)
        return ~np.isnan(self.labels[:, 0])

    def row_video(self) -> np.ndarray:
        """(N,) index into `video_ids` of every row."""
        return np.repeat(np.arange(len(self.video_ids)), self.lengths)


def _line(path: Path, row: int) -> str:
    """How to find data row `row` (0-based) in the user's file."""
    if path.suffix == ".csv":
        return f"row {row} (line {row + 2} of the CSV)"
    return f"row {row}"


def _text(value) -> str:
    """A value quoted for a message: np.str_('S0002') reads as 'S0002', like the file says."""
    return repr(str(value)) if isinstance(value, (str, np.str_)) else repr(value)


def _duplicates(names) -> list[str]:
    """Column names given more than once (blank names are index or trailing-comma columns, never read)."""
    seen, dup = set(), []
    for name in names:
        name = str(name)
        if name.strip() and name in seen and name not in dup:
            dup.append(name)
        seen.add(name)
    return dup


def _duplicate_error(path: Path, dup: list[str]) -> DataError:
    return DataError(
        f"{path}: column name{'s' if len(dup) > 1 else ''} {', '.join(map(repr, dup[:10]))} "
        f"appear{'' if len(dup) > 1 else 's'} more than once in the header. emo cannot tell which copy "
        f"holds the data (a second copy would be silently dropped): rename or remove the duplicates."
    )


def _csv_header(path: Path) -> tuple[list[str], str]:
    """The CSV's header as written (pandas renames a second `emb_6` to `emb_6.1`) and its delimiter.

    A header without a comma but with `;` or tabs is read with that delimiter: a single-column
    misreading would otherwise surface as a misleading "no 'video_id' column".
    """
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        line = f.readline()
    counts = {sep: line.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda k: (counts[k], k == ","))  # commas win a tie
    names = next(csv.reader([line.rstrip("\r\n")], delimiter=sep), [])
    return names, sep


def read_raw(path: Path) -> pd.DataFrame:
    """Read a .csv or .parquet file into a DataFrame, or fail with a clear DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path, or run `emo data check` on the dataset folder.")
    try:
        if path.suffix == ".csv":
            names, sep = _csv_header(path)
            if dup := _duplicates(names):
                raise _duplicate_error(path, dup)
            if sep != ",":
                log.info("%s: the header is separated by %r, not commas; read with that delimiter.", path, sep)
            # ids stay text: "0042" must not become the number 42
            df = pd.read_csv(
                path, sep=sep, low_memory=False, dtype={c: str for c in ("video_id", "path", "filename", "split")}
            )
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:  # pyarrow refuses duplicate names with "Multiple matches for FieldRef": say it plainly
                names = pq.read_schema(path).names
            except Exception:  # a damaged file: read_parquet below says what is wrong
                names = []
            if dup := _duplicates(names):
                raise _duplicate_error(path, dup)
            df = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: unknown file type {path.suffix!r}; emo reads .csv and .parquet tables.")
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows). Write the table again.") from None
    except Exception as exc:  # pandas/pyarrow raise many types for a damaged file
        raise DataError(
            f"{path}: cannot be read as a {path.suffix[1:]} table ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Check that the file is complete and "
            f"in the format its ending says."
        ) from None
    if dup := _duplicates(df.columns):
        raise _duplicate_error(path, dup)
    if len(df) == 0:
        raise DataError(f"{path}: the table has a header but no rows. A {path.stem} table needs at least one row.")
    return df


def _holds_lists(s: pd.Series) -> bool:
    """Whether a column's cells are lists or arrays (a vector per cell, as parquet can store);
    its first non-empty cell decides, so the check costs nothing on a long column."""
    if s.dtype != object:
        return False
    first = s.first_valid_index()
    return first is not None and isinstance(s.loc[first], (list, tuple, np.ndarray, dict))


def _lists_error(path: Path, col, s: pd.Series, what: str) -> DataError:
    first = s.loc[s.first_valid_index()]
    size = len(first) if hasattr(first, "__len__") else "?"
    return DataError(
        f"{path}: column {str(col)!r} ({what}) holds lists or arrays ({size} values in a cell), "
        f"not one number per cell. Write one column per value instead: a feature vector of D values "
        f"as columns emb_0 … emb_{{D-1}}."
    )


def _numeric(df: pd.DataFrame, col: str, path: Path, what: str) -> np.ndarray:
    """Column `col` as float64; text that is not a number is an error naming the row."""
    s = df[col]
    if pd.api.types.is_bool_dtype(s) or not (
        pd.api.types.is_numeric_dtype(s) or s.dtype == object or pd.api.types.is_string_dtype(s)
    ):
        raise DataError(f"{path}: column {col!r} ({what}) has type {s.dtype}, expected numbers.")
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(np.float64)
    if _holds_lists(s):
        raise _lists_error(path, col, s, what)
    values = pd.to_numeric(s, errors="coerce")
    bad = values.isna() & s.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        cell = s.iloc[row]
        if isinstance(cell, (list, tuple, np.ndarray, dict)):
            raise _lists_error(path, col, s[bad], what)
        hint = ""
        if isinstance(cell, str) and re.fullmatch(r"\s*[-+]?\d+,\d+\s*", cell):
            hint = " The numbers seem to use a decimal comma: write them with a decimal point (0.5, not 0,5)."
        raise DataError(
            f"{path}: column {str(col)!r} ({what}) holds text {_text(cell)} at {_line(path, row)}; "
            f"it must hold numbers. Fix or remove that row ({int(bad.sum())} such rows in all).{hint}"
        )
    return values.to_numpy(np.float64)


def _video_ids(df: pd.DataFrame, path: Path, source_col: str, pattern: str) -> np.ndarray:
    """The `video_id` column, or ids derived from `source_col` with the regex group `id`."""
    if "video_id" in df.columns:
        ids = df["video_id"]
        missing = ids.isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise DataError(
                f"{path}: column 'video_id' is empty at {_line(path, row)} "
                f"({int(missing.sum())} rows in all). Every row needs the video it belongs to."
            )
        return ids.astype(str).to_numpy()
    candidates = [c for c in (source_col, "path", "filename") if c in df.columns]
    if not candidates:
        hint = ""
        if len(df.columns) == 1:  # one column: most likely a delimiter emo did not recognise
            hint = (
                f" The file was read as a single column named {str(df.columns[0])[:60]!r}: if its columns are "
                f"separated by something other than commas, semicolons or tabs, write it with commas."
            )
        raise DataError(
            f"{path}: no 'video_id' column and no {source_col!r} column to derive it from. "
            f"Add a 'video_id' column (or a {source_col!r} column whose value names the video).{hint}"
        )
    col = candidates[0]
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"the video id pattern {pattern!r} is not a valid regular expression ({exc}).") from None
    if "id" not in rx.groupindex:
        raise DataError(
            f"the video id pattern {pattern!r} has no named group 'id'; write it like {VIDEO_ID_PATTERN!r}."
        )
    values = df[col].astype(str)
    extracted = values.str.extract(rx, expand=True)["id"]
    bad = extracted.isna().to_numpy() | df[col].isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: cannot derive a video id from column {col!r} value {_text(values.iloc[row])} at "
            f"{_line(path, row)} with the pattern {pattern!r} ({int(bad.sum())} rows fail). Add a "
            f"'video_id' column, or pass an id pattern (--id-pattern) whose named group 'id' matches."
        )
    return extracted.to_numpy().astype(str)


def _feature_columns(df: pd.DataFrame, path: Path, modality: str) -> list[str]:
    emb = sorted((int(m.group(1)), c) for c in df.columns if (m := _EMB.match(str(c))))
    if emb:
        idx = [i for i, _ in emb]
        if idx != list(range(len(idx))):
            missing = sorted(set(range(max(idx) + 1)) - set(idx))
            raise DataError(
                f"{path}: feature columns must run emb_0 … emb_{{D-1}} without gaps; "
                f"{', '.join(f'emb_{i}' for i in missing[:5])} "
                f"{'is' if len(missing) == 1 else 'are'} missing. Write every embedding dimension."
            )
        return [c for _, c in emb]
    if modality == "video":
        vectors = [c for c in df.columns if _holds_lists(df[c])]
        if vectors:
            raise _lists_error(path, vectors[0], df[vectors[0]], "feature")
        raise DataError(
            f"{path}: no feature columns. A video frame table needs emb_0 … emb_{{D-1}} columns "
            f"(the face embedding of each frame)."
        )
    cols = []
    for c in df.columns:
        if c in RESERVED or _INDEX.match(str(c)):
            continue
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            cols.append(c)
        elif _holds_lists(s):
            raise _lists_error(path, c, s, "feature")
        elif (s.dtype == object or pd.api.types.is_string_dtype(s)) and pd.to_numeric(
            s, errors="coerce"
        ).notna().mean() > 0.5:
            cols.append(c)  # a numeric column with some text in it: _numeric reports the row
    if not cols:
        raise DataError(
            f"{path}: no numeric feature columns. An audio table needs emb_* columns or numeric "
            f"feature columns (e.g. eGeMAPS) besides {sorted(RESERVED & set(df.columns))}."
        )
    return cols


def _features(df: pd.DataFrame, cols: list[str], path: Path) -> np.ndarray:
    block = df[cols]
    flags = [c for c, t in zip(cols, block.dtypes) if pd.api.types.is_bool_dtype(t)]
    if flags:
        raise DataError(f"{path}: feature column {flags[0]!r} holds true/false values; features must be numbers.")
    if all(pd.api.types.is_numeric_dtype(t) for t in block.dtypes):
        x = block.to_numpy(np.float32)
    else:
        x = np.column_stack([_numeric(df, c, path, "feature").astype(np.float32) for c in cols])
    bad = ~np.isfinite(x)
    if bad.any():
        rows, cs = np.nonzero(bad)
        value = x[rows[0], cs[0]]
        hint = " (or a number beyond ±3.4e38, too large for the 32-bit floats emo stores)" if np.isinf(value) else ""
        raise DataError(
            f"{path}: feature column {cols[cs[0]]!r} is {value}{hint} at {_line(path, int(rows[0]))} "
            f"({len(np.unique(rows))} rows with NaN or infinite features). Features must be finite: "
            f"drop those rows or re-extract the features."
        )
    return np.ascontiguousarray(x)


EXTREME = 1e6  # a column whose peak |value| exceeds this many times the typical feature magnitude


def warn_extreme(x: np.ndarray, cols: list[str], path: Path) -> list[str]:
    """Warn about feature columns whose largest |value| dwarfs the typical magnitude of the features.

    One such cell (1e38 where the rest are about 1) makes the column's training standard deviation
    huge, so standardisation squashes every other value of the column to about 0: the feature is lost
    without an error. The typical magnitude is the median over columns of each column's median
    |value|, taken on at most 10,000 evenly spaced rows; peaks come from every row, without a copy.
    Returns the flagged column names.
    """
    if not x.size:
        return []
    peak = np.maximum(x.max(axis=0), -x.min(axis=0)).astype(np.float64)
    sample = np.abs(x[:: max(1, len(x) // 10_000)]).astype(np.float64)
    typical = np.median(sample, axis=0)
    if not (typical > 0).any():  # mostly-zero (sparse) columns: their mean magnitude instead
        typical = sample.mean(axis=0)
    if not (typical > 0).any():
        return []
    ref = float(np.median(typical[typical > 0]))
    flagged = np.flatnonzero(peak > EXTREME * ref)
    if not len(flagged):
        return []
    rows = np.abs(x[:, flagged[:5]]).argmax(axis=0)
    where = "; ".join(f"{cols[j]!r} reaches {x[r, j]:g} at {_line(path, int(r))}" for j, r in zip(flagged, rows))
    log.warning(
        "%s: %d feature column(s) hold values over %g times the typical feature magnitude (%.3g): %s%s. "
        "Standardisation would squash every other value of such a column to about 0. Check those rows "
        "(a unit or extraction error?) and fix or drop them.",
        path,
        len(flagged),
        EXTREME,
        ref,
        where,
        " …" if len(flagged) > 5 else "",
    )
    return [cols[j] for j in flagged]


def _labels(df: pd.DataFrame, path: Path, label_scale: float, required: bool) -> np.ndarray | None:
    present = [c for c in ("valence", "arousal") if c in df.columns]
    if not present:
        if required:
            raise DataError(
                f"{path}: columns 'valence' and 'arousal' are missing. A video frame table needs "
                f"both labels on every frame."
            )
        return None
    if len(present) == 1:
        other = "arousal" if present[0] == "valence" else "valence"
        raise DataError(f"{path}: column {other!r} is missing; emo needs both 'valence' and 'arousal'.")
    out = np.empty((len(df), 2), np.float32)
    for j, col in enumerate(("valence", "arousal")):
        y = _numeric(df, col, path, "label")
        out_of_range = np.abs(np.nan_to_num(y)) > label_scale * (1 + 1e-6)
        if out_of_range.any():
            row = int(np.flatnonzero(out_of_range)[0])
            peak = float(np.nanmax(np.abs(y)))
            hint = (
                f" The labels reach {peak:g}: if the corpus is on a [-{np.ceil(peak):g}, {np.ceil(peak):g}] "
                f'scale (AFEW-VA uses [-10, 10]), pass --label-scale {np.ceil(peak):g} or set "label_scale" '
                f"in meta.json."
            )
            raise DataError(
                f"{path}: label {col!r} is {y[row]:g} at {_line(path, row)}, outside the declared "
                f"range [-{label_scale:g}, {label_scale:g}] ({int(out_of_range.sum())} rows).{hint}"
            )
        out[:, j] = y / label_scale
    # both labels empty: an unlabelled frame (its features still serve as context); one alone is a defect
    half = np.isnan(out).any(axis=1) & ~np.isnan(out).all(axis=1)
    if half.any():
        row = int(np.flatnonzero(half)[0])
        missing = "valence" if np.isnan(out[row, 0]) else "arousal"
        raise DataError(
            f"{path}: label {missing!r} is missing at {_line(path, row)} while the other label is set "
            f"({int(half.sum())} rows in all). Give a frame both labels, or leave both empty to mark it "
            f"unlabelled."
        )
    if required and np.isnan(out).all():
        raise DataError(
            f"{path}: no frame has labels (both 'valence' and 'arousal' are empty on every row). emo "
            f"needs labelled frames to train and evaluate."
        )
    return out


def _split_column(df: pd.DataFrame, ids: np.ndarray, path: Path) -> dict[str, str] | None:
    if "split" not in df.columns:
        return None
    s = df["split"].astype(str).str.strip().str.lower().to_numpy()
    bad = ~np.isin(s, SPLITS)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column 'split' is {df['split'].iloc[row]!r} at {_line(path, row)}; it must be "
            f"one of {', '.join(SPLITS)} (or drop the column to let emo split by video)."
        )
    pairs = pd.DataFrame({"id": ids, "split": s}).drop_duplicates()
    dup = pairs["id"].duplicated(keep=False)
    if dup.any():
        vid = pairs.loc[dup, "id"].iloc[0]
        where = sorted(pairs.loc[pairs["id"] == vid, "split"])
        raise DataError(
            f"{path}: video {_text(vid)} appears in several splits ({', '.join(where)}) in column 'split'. "
            f"A video must stay in one split, or test frames leak into training."
        )
    return dict(zip(pairs["id"], pairs["split"]))


def read_table(
    path: str | Path,
    *,
    modality: str = "video",
    fps: float | None = None,
    label_scale: float = 1.0,
    id_pattern: str | None = None,
    require_labels: bool = True,
) -> FrameTable:
    """Read and validate a video frame table (`modality="video"`) or an audio table (`"audio"`).

    Times come from `timestamp`, else `frame / fps` (video) or `frameTime` (openSMILE audio).
    Labels are divided by `label_scale`; `require_labels=False` reads a video table of recordings to
    predict, whose labels may be empty or absent.
    """
    path = Path(path)
    df = read_raw(path)
    source_col = "path" if modality == "video" else "filename"
    pattern = id_pattern or (VIDEO_ID_PATTERN if modality == "video" else AUDIO_ID_PATTERN)
    ids = _video_ids(df, path, source_col, pattern)
    times = _times(df, path, modality, fps)

    cols = _feature_columns(df, path, modality)
    x = _features(df, cols, path)
    warn_extreme(x, cols, path)
    y = _labels(df, path, label_scale, required=modality == "video" and require_labels)
    if y is None and modality == "video":  # recordings to predict, without label columns at all
        y = np.full((len(df), 2), np.nan, np.float32)
    split = _split_column(df, ids, path)

    video_ids, order, times, offsets = _sort_rows(ids, times, path)
    return FrameTable(
        source=path,
        video_ids=video_ids,
        offsets=offsets,
        times=times,
        features=x[order],
        labels=None if y is None else y[order],
        feature_names=[str(c) for c in cols],
        split=split,
    )


def _times(df: pd.DataFrame, path: Path, modality: str, fps: float | None) -> np.ndarray:
    """Every row's time in seconds, from `timestamp`, else `frame / fps` (video) or `frameTime` (audio)."""
    if "timestamp" in df.columns:
        times = _numeric(df, "timestamp", path, "time in seconds")
    elif modality == "video" and "frame" in df.columns:
        if not fps:
            raise DataError(
                f"{path}: no 'timestamp' column, so times come from 'frame' / fps, but no fps is "
                f'known. Set "fps" in meta.json or pass --fps.'
            )
        times = _numeric(df, "frame", path, "frame index") / fps
    elif modality == "audio" and "frameTime" in df.columns:
        times = _numeric(df, "frameTime", path, "time in seconds")
    else:
        need = "'timestamp' (seconds) or 'frame' (with fps)" if modality == "video" else "'timestamp' (seconds)"
        raise DataError(f"{path}: no time column; the table needs {need}.")
    nan = ~np.isfinite(times)
    if nan.any():
        row = int(np.flatnonzero(nan)[0])
        raise DataError(f"{path}: the time is missing or not finite at {_line(path, row)}. Every row needs a time.")
    return times


def _sort_rows(ids: np.ndarray, times: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The order that sorts rows by (video, time): (sorted unique ids, row order, sorted times, offsets
    of each video's rows). A (video, time) given twice is an error naming both rows."""
    video_ids, codes = np.unique(ids, return_inverse=True)
    order = np.lexsort((times, codes))
    codes, times = codes[order], times[order]
    dup = (np.diff(codes) == 0) & (np.diff(times) == 0)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        rows = sorted((int(order[i]), int(order[i + 1])))
        raise DataError(
            f"{path}: video {_text(video_ids[codes[i]])} has two rows at time {times[i]:g} s "
            f"({_line(path, rows[0])} and {_line(path, rows[1])}; {int(dup.sum())} duplicates in all). "
            f"Remove the duplicate rows: each (video, time) must appear once."
        )
    offsets = np.zeros(len(video_ids) + 1, np.int64)
    np.cumsum(np.bincount(codes, minlength=len(video_ids)), out=offsets[1:])
    return video_ids, order, times, offsets
