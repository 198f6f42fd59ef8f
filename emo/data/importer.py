"""Writing an imported corpus as a dataset folder in the data contract.

The corpus readers (`emo.data.corpora`) yield one `Recording` at a time; each is aligned to the
grid (`emo.data.align`) and appended to the tables as it comes, so memory holds one recording,
not the corpus. Everything is written to a temporary folder beside DEST and moved into place at
the end: a failed import leaves nothing half-written.
"""

from __future__ import annotations

import errno
import glob
import json
import logging
import os
import re
import shutil
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from emo.core.config import SPLITS as PARTITIONS  # official partitions map onto emo's splits
from emo.core.errors import DataError
from emo.data.align import Aligned, Series, align, to_grid
from emo.data.split import Split

log = logging.getLogger(__name__)


@dataclass
class Recording:
    """One recording as a corpus ships it: features and labels in seconds, not yet on the grid."""

    id: str
    video: Series  # (n, D) per-frame features
    labels: Series | None  # (m, 2) valence, arousal; None: the corpus ships no labels for it
    partition: str | None = None  # official partition: train | dev | test
    audio: dict[int, Series] = field(default_factory=dict)  # window seconds -> (k, Da) features
    audio_names: dict[int, list[str]] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # e.g. {"culture": "DE"}


def table_schema(names: list[str], labels: bool) -> pa.Schema:
    """The columns of a table emo writes: video_id, timestamp, [valence, arousal,] features."""
    fields = [pa.field("video_id", pa.string()), pa.field("timestamp", pa.float64())]
    if labels:
        fields += [pa.field("valence", pa.float32()), pa.field("arousal", pa.float32())]
    return pa.schema(fields + [pa.field(n, pa.float32()) for n in names])


def rows_table(schema: pa.Schema, vid: str, times: np.ndarray, x: np.ndarray, y: np.ndarray | None = None) -> pa.Table:
    """One recording's rows in `schema`; NaN labels become empty cells."""
    cols = [pa.array(np.full(len(times), vid, dtype=object), pa.string()), pa.array(np.asarray(times, np.float64))]
    if y is not None:
        cols += [pa.array(y[:, j], pa.float32(), from_pandas=True) for j in range(2)]
    cols += [pa.array(np.ascontiguousarray(x[:, j]), pa.float32()) for j in range(x.shape[1])]
    return pa.Table.from_arrays(cols, schema=schema)


class _TableWriter:
    """Appends one recording's rows at a time to one .csv or .parquet file.

    Blocks are buffered into row groups of about `ROW_GROUP_CELLS` values: one row group per
    recording would give a SEWA-sized file 500 row groups × 514 columns of metadata to hold and read.
    """

    ROW_GROUP_CELLS = 1 << 24  # 16 M values, 64 MiB of float32

    def __init__(self, path: Path, names: list[str], labels: bool, source: str):
        self.path, self.names, self.source = path, names, source  # source: the first file, for messages
        self.schema = table_schema(names, labels)
        self.writer = self.sink = None
        self.rows = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def append(self, vid: str, times: np.ndarray, x: np.ndarray, y: np.ndarray | None = None) -> None:
        self.pending.append(rows_table(self.schema, vid, times, x, y))
        self.pending_rows += len(times)
        self.rows += len(times)
        if self.pending_rows * len(self.schema) >= self.ROW_GROUP_CELLS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        if self.writer is None:
            # our own file handle: pyarrow's CSV writer keeps a failed file open until it is garbage-collected
            self.sink = pa.OSFile(str(self.path), "wb")
            self.writer = (
                pq.ParquetWriter(self.sink, self.schema, write_statistics=False)
                if self.path.suffix == ".parquet"
                else pacsv.CSVWriter(self.sink, self.schema)
            )
        self.writer.write_table(pa.concat_tables(self.pending))
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        try:
            self._flush()
        finally:  # a failed write (a full disk) must still let go of the file, or its space stays taken
            try:
                if self.writer is not None:
                    self.writer.close()
            finally:
                if self.sink is not None:
                    self.sink.close()


def close_all(writers: Iterable[_TableWriter]) -> None:
    """Close every writer even when one fails; the first failure is raised after."""
    failed = []
    for w in writers:
        try:
            w.close()
        except OSError as exc:
            failed.append(exc)
    if failed:
        raise failed[0]


@dataclass
class RecordingStats:
    id: str
    partition: str | None
    steps: int
    labelled: int
    gaps: int
    label_min: np.ndarray | None
    label_max: np.ndarray | None


@dataclass
class ImportSummary:
    dest: Path
    fmt: str
    fps: float
    label_scale: float
    recordings: list[RecordingStats]
    unlabelled: list[RecordingStats]
    split_rule: str
    audio: dict[int, int]

    def __str__(self) -> str:
        lines = [
            f"imported {self.fmt} into {self.dest} on a {self.fps:g} fps grid (labels in "
            f"[-{self.label_scale:g}, {self.label_scale:g}])"
        ]
        by_part: dict[str, list[RecordingStats]] = {}
        for r in self.recordings:
            by_part.setdefault(r.partition or "-", []).append(r)
        for part, recs in sorted(by_part.items()):
            steps, lab = sum(r.steps for r in recs), sum(r.labelled for r in recs)
            ranges = [(r.label_min, r.label_max) for r in recs if r.label_min is not None]
            if ranges:
                lo, hi = np.min([a for a, _ in ranges], axis=0), np.max([b for _, b in ranges], axis=0)
                span = f"valence [{lo[0]:+.3f}, {hi[0]:+.3f}] arousal [{lo[1]:+.3f}, {hi[1]:+.3f}]"
            else:
                span = "no label on the grid"
            name = "no official partition" if part == "-" else f"partition {part}"
            lines.append(
                f"  {name:22s} {_n(len(recs), 'recording')}, {lab} labelled frames, {steps - lab} "
                f"unlabelled, {sum(r.gaps for r in recs)} gaps; {span}"
            )
        if self.unlabelled:
            ids = [r.id for r in self.unlabelled]
            lines.append(
                f"  without labels         {_n(len(ids), 'recording')} ({', '.join(ids[:4])}"
                f"{' …' if len(ids) > 4 else ''}): written to {self.dest / 'unlabelled'} for prediction, "
                f"never used for training or evaluation"
            )
        for w, rows in sorted(self.audio.items()):
            lines.append(f"  audio_{w}s               {rows} rows")
        lines.append(f"  split: {self.split_rule}")
        lines.append(f"check it with: emo data check {self.dest}")
        return "\n".join(lines)


def _n(count: int, noun: str, width: int = 4) -> str:
    return f"{count:{width}d} {noun}{'' if count == 1 else 's'}"


def _stats(rec: Recording, times: np.ndarray, y: np.ndarray | None, fps: float) -> RecordingStats:
    labelled = np.isfinite(y).all(axis=1) if y is not None else np.zeros(len(times), bool)
    gaps = int((np.diff(times) > 1.5 / fps).sum())
    lo = hi = None
    if labelled.any():
        lo, hi = y[labelled].min(axis=0), y[labelled].max(axis=0)
    return RecordingStats(rec.id, rec.partition, len(times), int(labelled.sum()), gaps, lo, hi)


def official_split(
    partition: dict[str, str | None], groups: dict[str, dict[str, str]], seed: int, dev_share: float = 0.15
) -> tuple[Split | None, str]:
    """The split the corpus's official partitions give, and the rule, in words.

    All three partitions labelled: they are the split. Otherwise the set emo reports on is the
    official test partition when it has labels, else the official dev partition (SEWA/AVEC,
    Aff-Wild2 and RECOLA keep their test labels back), and emo's dev set, which early stopping and
    tuning see, is carved from the official training recordings (`dev_share`, seeded, per group
    such as culture): nothing that picks a model ever sees the set it is reported on.
    No partitions at all: None (emo splits 70/15/15 by video on first use).
    """
    parts = {p: sorted(v for v, q in partition.items() if q == p) for p in PARTITIONS}
    if not any(parts.values()):
        return None, "no official partitions: emo splits the recordings 70/15/15 by video on first use (split.json)"
    if all(parts.values()):
        return (
            Split(*(tuple(parts[p]) for p in PARTITIONS), seed=None, ratios=(0, 0, 0), source="official"),
            "the corpus's official partitions (train / dev / test)",
        )
    held = "test" if parts["test"] else "dev"
    if not (parts["train"] and parts[held]) or len(parts["train"]) < 2:
        have = ", ".join(f"{p} {len(v)}" for p, v in parts.items())
        raise DataError(
            f"the official partitions hold too few labelled recordings ({have}): emo needs at least 2 "
            f"labelled training recordings and a labelled dev or test partition to build its split from "
            f"them. Import without the partition information to let emo split by video."
        )
    group = next(iter(groups.values()), {})
    rng = np.random.default_rng(seed)
    dev: list[str] = []
    for g in sorted({group.get(v, "") for v in parts["train"]}):
        members = [v for v in parts["train"] if group.get(v, "") == g]
        n = max(1, int(round(dev_share * len(members)))) if len(members) > 2 else 0
        dev += rng.permutation(members)[:n].tolist()
    if not dev:
        dev = rng.permutation(parts["train"])[:1].tolist()
    train = sorted(set(parts["train"]) - set(dev))
    why = "the official dev partition" if held == "dev" else "the official test partition"
    rule = (
        f"{why} ({_n(len(parts[held]), 'recording', 0)}) is emo's test set"
        + (", as the official test partition has no labels" if held == "dev" else "")
        + f"; emo's dev set is {len(dev)} of the {len(parts['train'])} official training recordings "
        f"(seed {seed}{', per ' + next(iter(groups)) if groups else ''})"
    )
    return Split(
        tuple(train), tuple(sorted(dev)), tuple(parts[held]), seed=seed, ratios=(0, 0, 0), source="official"
    ), rule


def check_dest(dest: Path, sources: Iterable[tuple[str, str | Path]] = ()) -> Path:
    """DEST, resolved, once it is safe to replace as a whole: not the current folder nor one above it,
    and apart from every source (`(option, path)`): replacing it must not delete a source, and a
    dataset inside a source folder would be read by the next import of it."""
    target = Path(dest).resolve()  # symlinks resolved on both sides: a link to a source is that source
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise DataError(
            f"{dest}: DEST is {'the current folder' if target == here else 'above the current folder'}, "
            f"and an import replaces its DEST whole. Name a new folder, e.g. "
            f"{Path(dest) / 'dataset'}."
        )
    for option, source in sources:
        src = Path(source).resolve()
        relation = (
            "is"
            if target == src
            else "contains"
            if target in src.parents
            else "lies inside"
            if src in target.parents
            else None
        )
        if relation:
            raise DataError(
                f"DEST {dest} {relation} the source {source} ({option}); an import replaces DEST "
                f"whole, and must never touch its sources. Write the dataset to a folder apart from "
                f"them."
            )
    return target


# Temporary folders beside DEST: `.<name>.import-<pid>@<host>` while writing, `.<name>.old-<pid>@<host>`
# while replacing (older imports left out `@<host>`). A process killed outright (SIGKILL, power loss)
# cannot remove its own, so every import removes those of processes of this host that no longer run.
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:import|old)-(?P<pid>\d+)(?:@(?P<host>.+))?$")


def temp_path(dest: Path, kind: str) -> Path:
    return dest.with_name(f".{dest.name}.{kind}-{os.getpid()}@{socket.gethostname()}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(dest: Path) -> list[Path]:
    """Remove the temporary folders that killed imports to `dest` left behind; returns them."""
    host = socket.gethostname()
    stale = []
    for path in dest.parent.glob(f".{glob.escape(dest.name)}.*-*"):
        m = _TEMP.match(path.name)
        if m and m["name"] == dest.name and m["host"] in (None, host) and not _running(int(m["pid"])):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    if stale:
        log.info(
            "removed %d temporary folder(s) of killed imports to %s: %s",
            len(stale),
            dest,
            ", ".join(p.name for p in stale),
        )
    return stale


def prepare_dest(dest: Path, force: bool) -> Path:
    """A fresh temporary folder beside `dest`; refuses an existing `dest` unless `force`."""
    if dest.exists() and not force:
        raise DataError(f"{dest} exists already. Choose a new folder, or pass --force to replace it.")
    remove_stale(dest)
    tmp = temp_path(dest, "import")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def commit_dest(tmp: Path, dest: Path) -> None:
    """Move the finished import into place (replacing `dest` when it exists: --force was checked)."""
    if dest.exists():
        old = temp_path(dest, "old")
        dest.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    tmp.rename(dest)


def os_error(dest: Path, exc: OSError) -> DataError:
    """An operating-system error of an import in one line: what, where, and what to do."""
    where = exc.filename or dest
    what = os.strerror(exc.errno) if exc.errno else str(exc)  # pyarrow's strerror wraps it in its own words
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = f"the disk (or quota) holding {dest} is full. Free some space, or choose a DEST on another disk"
    elif exc.errno == errno.EROFS:
        todo = f"{dest} is on a read-only file system. Choose a DEST on a writable disk"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        todo = f"check that you may read the sources and write to {dest.parent}"
    else:
        todo = "check the path and the disk"
    return DataError(f"{where}: {what}: {todo}; nothing of this import was left behind.")


def write_dataset(
    recordings: Iterable[Recording],
    dest: str | Path,
    *,
    fps: float,
    label_scale: float,
    source_format: str,
    options: dict | None = None,
    force: bool = False,
    fmt: str = "parquet",
    seed: int = 0,
    progress: bool = True,
    sources: Iterable[tuple[str, str | Path]] = (),
) -> ImportSummary:
    """Align each recording to the grid and write the dataset folder DEST (see the module docstring).
    `sources` are the `(option, path)` inputs, which DEST must keep apart from (`check_dest`)."""
    shown = Path(dest)
    if fmt not in ("csv", "parquet"):
        raise DataError(f"unknown table format {fmt!r}; choose csv or parquet.")
    dest = check_dest(shown, sources)
    tmp = None
    try:
        tmp = prepare_dest(dest, force)
        summary = _write(recordings, tmp, dest, fps, label_scale, source_format, options or {}, fmt, seed, progress)
        commit_dest(tmp, dest)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise os_error(shown, exc) from None
        raise
    return replace(summary, dest=shown)  # the folder as the user named it


def _write(
    recordings: Iterable[Recording],
    tmp: Path,
    dest: Path,
    fps: float,
    label_scale: float,
    source_format: str,
    options: dict,
    fmt: str,
    seed: int,
    progress: bool,
) -> ImportSummary:
    """Write every recording's tables, the split and meta.json into `tmp` (which becomes `dest`)."""
    from tqdm import tqdm

    writers = _Writers(tmp, fmt)
    done = _Imported()
    try:
        for rec in tqdm(recordings, desc=f"import {source_format}", unit="rec", disable=not progress):
            _write_recording(rec, writers, done, fps, label_scale)
    finally:
        writers.close()
    if not done.stats:
        raise DataError("no recording has labels, so there is nothing to train on. Check --labels.")
    split, rule = official_split(done.partition, done.groups, seed)
    if split is not None:
        body = {**split.to_json(), "rule": rule}
        (tmp / "split.json").write_text(json.dumps(body, indent=1) + "\n")
    _write_meta(tmp, dest, _meta(dest, fps, label_scale, source_format, options, rule, done), bool(done.unlabelled))
    return ImportSummary(dest, source_format, fps, label_scale, done.stats, done.unlabelled, rule, writers.audio_rows())


class _Writers:
    """The table writers of one import, one per (folder, table), each opened with its first rows."""

    def __init__(self, tmp: Path, fmt: str):
        self.tmp, self.fmt = tmp, fmt
        self.tables: dict[tuple[str, str], _TableWriter] = {}

    def get(self, folder: str, table: str, names: list[str], labels: bool, source: str) -> _TableWriter:
        """The writer of `folder/table`; every recording must bring it the same feature columns."""
        key = (folder, table)
        if key not in self.tables:
            (self.tmp / folder).mkdir(parents=True, exist_ok=True)
            self.tables[key] = _TableWriter(self.tmp / folder / f"{table}.{self.fmt}", names, labels, source)
        elif self.tables[key].names != names:
            first = self.tables[key]
            raise DataError(
                f"{source}: its features ({len(names)}: {', '.join(names[:3])} …) differ from those of "
                f"{first.source} ({len(first.names)}: {', '.join(first.names[:3])} …). Every "
                f"recording's {table} features must be the same columns."
            )
        return self.tables[key]

    def audio_rows(self) -> dict[int, int]:
        """Rows written per audio window length (seconds), labelled recordings only."""
        return {int(t.split("_")[1][:-1]): w.rows for (f, t), w in self.tables.items() if f == "." and t != "video"}

    def close(self) -> None:
        """Close every writer, even when one fails (`close_all`)."""
        close_all(self.tables.values())


@dataclass
class _Imported:
    """What the recordings written so far add up to: their stats, official partitions and groups."""

    stats: list[RecordingStats] = field(default_factory=list)
    unlabelled: list[RecordingStats] = field(default_factory=list)
    partition: dict[str, str | None] = field(default_factory=dict)
    groups: dict[str, dict[str, str]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def add(self, rec: Recording, stats: RecordingStats) -> None:
        """Count a written recording; only a labelled one takes part in the split."""
        if rec.labels is None:
            self.unlabelled.append(stats)
            return
        self.stats.append(stats)
        self.partition[rec.id] = rec.partition
        for g, value in rec.groups.items():
            self.groups.setdefault(g, {})[rec.id] = value


def _write_recording(rec: Recording, writers: _Writers, done: _Imported, fps: float, label_scale: float) -> None:
    """Align one recording to the grid and append its rows: a labelled one to the dataset's tables,
    an unlabelled one to those under `unlabelled/`."""
    if rec.id in done.seen:
        raise DataError(
            f"{rec.video.source}: recording id {rec.id!r} appears twice in the corpus. Ids "
            f"must be unique; import the parts separately or rename one."
        )
    done.seen.add(rec.id)
    labelled = rec.labels is not None
    on = align(rec.video, rec.labels, fps)
    y = on.labels  # written in the corpus's own scale; emo divides by label_scale when it reads
    if labelled:
        _check_label_range(rec, on, label_scale)
    folder = "." if labelled else "unlabelled"
    names = [f"emb_{j}" for j in range(on.features.shape[1])]
    writers.get(folder, "video", names, True, rec.video.source).append(
        rec.id, on.times, on.features, y if labelled else np.full((len(on.times), 2), np.nan, np.float32)
    )
    for w, series in sorted(rec.audio.items()):
        times, xa, _ = to_grid(series, fps, keep_sparse=True)
        aname = rec.audio_names.get(w) or [f"emb_{j}" for j in range(xa.shape[1])]
        writers.get(folder, f"audio_{w}s", aname, False, series.source).append(rec.id, times, xa)
    done.add(rec, _stats(rec, on.times, y, fps))


def _check_label_range(rec: Recording, on: Aligned, label_scale: float) -> None:
    """A label beyond ±label_scale means the corpus's scale was not passed (--label-scale)."""
    peak = np.abs(np.nan_to_num(on.labels)).max(axis=1)
    if (peak > label_scale * (1 + 1e-6)).any():
        row = int(np.argmax(peak))
        raise DataError(
            f"{rec.labels.source}: a label reaches {peak[row]:g} near "
            f"{on.times[row]:g} s, outside [-{label_scale:g}, {label_scale:g}]. Pass the "
            f"corpus's scale with --label-scale."
        )


def _meta(
    dest: Path, fps: float, label_scale: float, source_format: str, options: dict, rule: str, done: _Imported
) -> dict:
    """meta.json of the imported dataset: its grid, scale, source, split rule and groups."""
    return {
        "name": dest.name,
        "fps": fps,
        "label_scale": label_scale,
        "synthetic": False,
        "source_format": source_format,
        "import_options": options,
        "split_rule": rule,
        "alignment": "features averaged into grid steps [k/fps, (k+1)/fps); labels linearly interpolated at "
        "the mean time of each step's features, never extrapolated past the labelled span",
        "groups": done.groups,
        "unlabelled_recordings": [r.id for r in done.unlabelled],
    }


def _write_meta(tmp: Path, dest: Path, meta: dict, unlabelled: bool) -> None:
    """meta.json, and the `unlabelled/` folder's own (a dataset of recordings to predict)."""
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")
    if unlabelled:
        (tmp / "unlabelled" / "meta.json").write_text(
            json.dumps({**meta, "name": f"{dest.name}-unlabelled", "unlabelled": True}, indent=1, default=str) + "\n"
        )
