"""Running an extraction over a folder of recordings: worker processes, progress, resume, failures.

Each recording's features are written to `OUT/.parts/<table>/<id>.parquet` as soon as they are done
(written aside and renamed, so a part is whole or absent), with the options they were made with in
its metadata; a re-run skips recordings whose parts exist and were made with its options, and
re-makes the others. The tables of the data contract (`video.parquet`, `audio_{N}s.parquet`, keyed
by `video_id` = the file's stem and `timestamp`) are then assembled from the parts. A file that fails
is reported with its reason; the others go on. A worker ends with the run that started it, even one
killed outright.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from emo.core.errors import DataError, EmoError, SomeFailed
from emo.data.importer import rows_table, table_schema
from emo.extract.media import media_files

log = logging.getLogger(__name__)

OPTIONS_KEY = b"emo.options"  # a part's schema metadata: the options it was made with, as JSON
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>: ask for a signal when the parent process dies


@dataclass
class Outcome:
    name: str
    tables: list[str] = field(default_factory=list)
    rows: int = 0
    media_seconds: float = 0.0
    seconds: float = 0.0
    skipped: bool = False
    error: str | None = None


def part_path(out: Path, table: str, vid: str) -> Path:
    return out / ".parts" / table / f"{vid}.parquet"


@dataclass(frozen=True)
class Parts:
    """One extraction's per-recording outputs in `out` and, per table, the options its parts are made with
    (whatever changes their values), recorded in each part."""

    out: Path
    options: dict[str, dict]  # table -> options

    def write(self, table: str, vid: str, times: np.ndarray, x: np.ndarray, names: list[str]) -> None:
        """One recording's rows of `table`, written aside and renamed into place."""
        path = part_path(self.out, table, vid)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        rows = rows_table(table_schema(names, labels=False), vid, times, x)
        pq.write_table(rows.replace_schema_metadata({OPTIONS_KEY: json.dumps(self.options[table])}), tmp)
        os.replace(tmp, path)

    def missing(self, vid: str) -> bool:
        return not all(part_path(self.out, t, vid).exists() for t in self.options)

    def changes(self, vid: str) -> list[str]:
        """How the options of `vid`'s existing parts differ from these ("hop 0.2 → 0.5"); [] if they do not."""
        made = {t: _recorded(p) for t in self.options if (p := part_path(self.out, t, vid)).exists()}
        return list(dict.fromkeys(c for t, recorded in made.items() for c in _changes(recorded, self.options[t])))


def _recorded(part: Path) -> dict | None:
    """The options `part` was made with; None for a part of an emo that did not record them."""
    meta = pq.read_schema(part).metadata or {}
    return json.loads(meta[OPTIONS_KEY]) if OPTIONS_KEY in meta else None


def _changes(recorded: dict | None, wanted: dict) -> list[str]:
    if recorded is None:
        return ["not recorded"]
    wanted = json.loads(json.dumps(wanted))  # tuples as lists, as they were recorded
    return [
        f"{k} {_shown(recorded.get(k))} → {_shown(wanted.get(k))}"
        for k in dict.fromkeys([*recorded, *wanted])
        if recorded.get(k) != wanted.get(k)
    ]


def _shown(value) -> str:
    """An option as it is typed: 5 (not 5.0), 0.5,0.5,0.5; `unset` where one run had no such option."""
    if value is None:
        return "unset"
    if isinstance(value, list):
        return ",".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _run_one(job: Callable, path: Path, parts: Parts, args: dict) -> Outcome:
    t0 = time.perf_counter()
    try:
        rows, media_seconds = job(path, parts, path.stem, **args)
    except EmoError as exc:
        return Outcome(path.name, error=str(exc))
    except Exception as exc:  # a decoder or model failing on one file must not stop the others
        return Outcome(path.name, error=f"{type(exc).__name__}: {exc}")
    return Outcome(path.name, list(parts.options), rows, media_seconds, time.perf_counter() - t0)


def _init_worker(parent: int) -> None:
    _exit_with(parent)
    try:
        import torch

        torch.set_num_threads(1)  # one process per core: threads inside would only fight
    except ImportError:
        pass


def _exit_with(parent: int) -> None:
    """End this worker when the run that started it ends, even by SIGKILL: an orphan would go on
    extracting and writing parts that no run assembles."""
    if sys.platform.startswith("linux"):  # the kernel's own notice: immediate, whatever this process is doing
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # it died before the notice was asked for
            os._exit(1)
    else:
        threading.Thread(target=_watch, args=(parent,), daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:  # an orphan is adopted by another process
        time.sleep(0.2)
    os._exit(1)


def _plan(files: list[Path], parts: Parts) -> list[Path]:
    """The recordings to extract: those without every part, or with parts made with other options
    (said, with what changed)."""
    changed = {p: parts.changes(p.stem) for p in files}
    redo = [p for p in files if changed[p]]
    if redo:
        what = ", ".join(dict.fromkeys(c for p in redo for c in changed[p]))
        log.warning("%d made with other options (%s): re-extracting", len(redo), what)
    return [p for p in files if changed[p] or parts.missing(p.stem)]


def run_folder(
    src: str | Path,
    out: str | Path,
    job: Callable,
    options: dict[str, dict],
    *,
    jobs: int | None = None,
    args: dict | None = None,
    what: str = "extract",
) -> list[Outcome]:
    """Run `job(path, parts, video_id, **args) -> (rows, media seconds)` on every recording of `src` whose
    parts are missing or were made with other options (`jobs` processes; default: the cores), then
    assemble the tables of `options` (table -> the options its parts are made with) in `out`."""
    from tqdm import tqdm

    files = media_files(src)
    parts = Parts(Path(out), options)
    parts.out.mkdir(parents=True, exist_ok=True)
    ids = [p.stem for p in files]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(
            f"{src}: several files share the stem {dup[0]!r}; a recording's id is its file's stem, so rename them."
        )
    todo = _plan(files, parts)
    outcomes = [Outcome(p.name, list(options), skipped=True) for p in files if p not in todo]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    args = args or {}
    bar = tqdm(total=len(todo), desc=what, unit="file")
    if jobs == 1:
        for path in todo:
            bar.set_postfix_str(path.name)
            outcomes.append(_run_one(job, path, parts, {**args, "progress": True}))
            bar.update()
    else:
        with ProcessPoolExecutor(
            jobs, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(os.getpid(),)
        ) as pool:
            futures = [pool.submit(_run_one, job, path, parts, {**args, "progress": False}) for path in todo]
            for future in as_completed(futures):
                outcome = future.result()
                bar.set_postfix_str(outcome.name)
                outcomes.append(outcome)
                bar.update()
    bar.close()
    done = {o.name for o in outcomes if o.error is None}
    for table in options:
        assemble(parts.out, table, [p.stem for p in files if p.name in done])
    failed = [o for o in outcomes if o.error]
    if failed:
        raise SomeFailed(
            f"{len(failed)} of {len(files)} recordings failed, the others were extracted into {out}: "
            + "; ".join(f"{o.name}: {o.error}" for o in failed[:5])
            + (" …" if len(failed) > 5 else "")
        )
    return outcomes


def assemble(out: Path, table: str, ids: list[str]) -> Path | None:
    """`out/<table>.parquet` from the parts of `ids` (written aside and renamed)."""
    parts = [part_path(out, table, vid) for vid in sorted(ids) if part_path(out, table, vid).exists()]
    if not parts:
        return None
    path = out / f"{table}.parquet"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        for part in parts:
            t = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(tmp, t.schema, write_statistics=False)
            elif t.schema != writer.schema:
                raise DataError(
                    f"{part}: its columns differ from the other recordings' ({table}); delete "
                    f"{out / '.parts' / table} and extract again with one set of options."
                )
            writer.write_table(t)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return path
