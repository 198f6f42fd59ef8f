"""Running an extraction over a folder of recordings: worker processes, progress, resume, failures.

Each recording's features are written to `OUT/.parts/<table>/<id>.parquet` as soon as they are done
(written aside and renamed, so a part is whole or absent); a re-run skips recordings whose parts
exist. The tables of the data contract (`video.parquet`, `audio_{N}s.parquet`, keyed by
`video_id` = the file's stem and `timestamp`) are then assembled from the parts. A file that fails
is reported with its reason; the others go on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from emo.data.importer import rows_table, table_schema
from emo.errors import DataError, EmoError
from emo.extract.media import media_files

log = logging.getLogger(__name__)


class SomeFailed(EmoError):
    """Some recordings could not be processed; the others were."""


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


def write_part(out: Path, table: str, vid: str, times: np.ndarray, x: np.ndarray, names: list[str]) -> None:
    """One recording's rows of `table`, written aside and renamed into place."""
    path = part_path(out, table, vid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(rows_table(table_schema(names, labels=False), vid, times, x), tmp)
    os.replace(tmp, path)


def _run_one(job: Callable, path: Path, out: Path, tables: list[str], args: dict) -> Outcome:
    vid = path.stem
    if all(part_path(out, t, vid).exists() for t in tables):
        return Outcome(path.name, tables, skipped=True)
    t0 = time.perf_counter()
    try:
        rows, media_seconds = job(path, out, vid, **args)
    except EmoError as exc:
        return Outcome(path.name, error=str(exc))
    except Exception as exc:  # a decoder or model failing on one file must not stop the others
        return Outcome(path.name, error=f"{type(exc).__name__}: {exc}")
    return Outcome(path.name, tables, rows, media_seconds, time.perf_counter() - t0)


def _init_worker() -> None:
    try:
        import torch

        torch.set_num_threads(1)  # one process per core: threads inside would only fight
    except ImportError:
        pass


def run_folder(src: str | Path, out: str | Path, job: Callable, tables: list[str], *, jobs: int | None = None,
               args: dict | None = None, what: str = "extract") -> list[Outcome]:
    """Run `job(path, out, video_id, **args) -> (rows, media seconds)` on every recording of `src`
    (`jobs` processes; default: the cores), then assemble `tables` in `out`."""
    from tqdm import tqdm

    files = media_files(src)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [p.stem for p in files]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"{src}: several files share the stem {dup[0]!r}; a recording's id is its file's stem, so "
                        f"rename them.")
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(files)))
    args = args or {}
    outcomes = []
    bar = tqdm(total=len(files), desc=what, unit="file")
    if jobs == 1:
        for path in files:
            bar.set_postfix_str(path.name)
            outcomes.append(_run_one(job, path, out, tables, {**args, "progress": True}))
            bar.update()
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = [pool.submit(_run_one, job, path, out, tables, {**args, "progress": False}) for path in files]
            for future in as_completed(futures):
                outcome = future.result()
                bar.set_postfix_str(outcome.name)
                outcomes.append(outcome)
                bar.update()
    bar.close()
    done = {o.name for o in outcomes if o.error is None}
    for table in tables:
        assemble(out, table, [p.stem for p in files if p.name in done])
    failed = [o for o in outcomes if o.error]
    if failed:
        raise SomeFailed(f"{len(failed)} of {len(files)} recordings failed, the others were extracted into {out}: "
                         + "; ".join(f"{o.name}: {o.error}" for o in failed[:5])
                         + (" …" if len(failed) > 5 else ""))
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
                raise DataError(f"{part}: its columns differ from the other recordings' ({table}); delete "
                                f"{out / '.parts' / table} and extract again with one set of options.")
            writer.write_table(t)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)
    return path
