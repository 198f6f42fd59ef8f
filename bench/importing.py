"""Benchmark: `emo data import avec` on a SEWA-sized corpus in the AVEC layout.

    python bench/importing.py                          # 500 recordings × 300 s at 10 Hz, 512-dim features
    python bench/importing.py --recordings 50          # quicker
    python bench/importing.py --dir /big/disk --keep   # where the generated corpus goes (about 7 GB at full size)

Writes label files (`name;timestamp;arousal;valence;liking`, 10 Hz) and headerless video feature
files (`'name';timestamp;<features>`, as AVEC 2018 ships them), then times the import onto the 5 fps
grid (parquet tables) and prints seconds, input MB/s, rows/s and the peak resident memory the
import adds. Generation is not timed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from memory import reset_rss_peak, rss_peak  # bench/memory.py


def _write(path: Path, name: str, t: np.ndarray, columns: list[np.ndarray], header: list[str] | None) -> None:
    arrays = [pa.array(np.full(len(t), f"'{name}'", dtype=object), pa.string()), pa.array(np.round(t, 6))]
    arrays += [pa.array(c) for c in columns]
    names = header or [f"c{j}" for j in range(len(arrays))]
    pacsv.write_csv(
        pa.Table.from_arrays(arrays, names=names),
        path,
        pacsv.WriteOptions(include_header=header is not None, delimiter=";", quoting_style="none"),
    )


def generate(root: Path, recordings: int, seconds: float, dim: int, rate: float, seed: int = 0) -> int:
    """The corpus in the AVEC layout; returns its size in bytes."""
    rng = np.random.default_rng(seed)
    (root / "labels").mkdir(parents=True)
    (root / "video").mkdir()
    t = np.arange(int(seconds * rate)) / rate
    for k in range(recordings):
        part = ("Train", "Devel", "Test")[k % 3]
        name = f"{part}_{('DE', 'HU')[k % 2]}_{k + 1:03d}"
        y = np.round(np.clip(np.cumsum(rng.normal(0, 0.02, (len(t), 3)), axis=0), -1, 1), 6)
        _write(
            root / "labels" / f"{name}.csv", name, t, list(y.T), ["name", "timestamp", "arousal", "valence", "liking"]
        )
        x = np.round(rng.standard_normal((dim, len(t)), dtype=np.float32), 3)
        _write(root / "video" / f"{name}.csv", name, t, list(x), None)
    return sum(p.stat().st_size for p in root.rglob("*.csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--rate", type=float, default=10.0, help="Hz of labels and features")
    parser.add_argument("--dir", type=Path, default=None, help="where to generate (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus and the dataset")
    args = parser.parse_args()

    from emo.data.corpora import avec
    from emo.data.importer import write_dataset

    root = Path(tempfile.mkdtemp(prefix="emo-import-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        size = generate(root / "corpus", args.recordings, args.seconds, args.dim, args.rate)
        print(
            f"generated {args.recordings} recordings × {args.seconds:g} s at {args.rate:g} Hz, {args.dim}-dim: "
            f"{size / 1e9:.2f} GB of CSV in {time.perf_counter() - t0:.0f} s (not timed below)"
        )
        base = reset_rss_peak()
        t0 = time.perf_counter()
        summary = write_dataset(
            avec(root / "corpus" / "labels", root / "corpus" / "video"),
            root / "ds",
            fps=5.0,
            label_scale=1.0,
            source_format="avec",
            progress=False,
        )
        seconds = time.perf_counter() - t0
        peak = rss_peak()
        rows = int(args.recordings * args.seconds * args.rate)
        print(summary)
        print(f"import: {seconds:.1f} s, {size / 1e6 / seconds:.0f} MB/s of CSV, {rows / seconds:,.0f} input rows/s")
        if base is not None and peak is not None:
            print(
                f"peak resident memory: {peak / 2**20:,.0f} MiB ({(peak - base) / 2**20:,.0f} MiB above the start); "
                f"one recording's features: {args.seconds * args.rate * args.dim * 8 / 2**20:,.0f} MiB as float64"
            )
        out = sum(p.stat().st_size for p in (root / "ds").rglob("*") if p.is_file())
        print(f"dataset folder: {out / 1e9:.2f} GB (parquet)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
