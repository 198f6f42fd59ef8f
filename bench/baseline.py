"""Benchmark: the baseline cell (Bayesian Ridge, SVR, Decision Tree) at corpus scale, and the linear-time
SVR against the exact one.

    python bench/baseline.py                    # the demo corpus (`--data synthetic`: 9,600 frames × 32)
    python bench/baseline.py --videos 400 --duration 60 --dim 512   # SEWA-sized: 120,000 frames × 512
    python bench/baseline.py --compare 3000     # exact vs linear-time SVR on 3,000 training frames

Part 1 runs the baseline cell as `emo train baseline` does (`run_experiment`, not tracked) on a synthetic
corpus generated once into --data-dir (or the demo corpus), one algorithm at a time, and prints each one's wall
time and dev/test RMSE (SVR: exact up to `svr_exact_max` training frames, else linear time).
Part 2 fits the SVR grid both ways on the first --compare training frames (a subsample where the exact
one runs) and prints dev and test RMSE of each, and their ratio: the linear-time method's promise is
within 5% of the exact one's.
Torch and BLAS run on --threads threads (default 1: one core of a shared machine).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def corpus(args) -> Path:
    from emo.data.dataset import resolve_data
    from emo.data.synth import SynthConfig, synthesize

    if args.videos is None:
        return resolve_data("synthetic")

    cfg = SynthConfig(videos=args.videos, duration_s=args.duration, dim=args.dim, audio_dim=8, seed=0)
    folder = Path(args.data_dir) / f"baseline-{cfg.videos}x{cfg.duration_s:g}s-{cfg.dim}d"
    if not (folder / "meta.json").exists():
        print(f"generating the synthetic corpus in {folder} (once) ...", flush=True)
        t0 = time.perf_counter()
        synthesize(folder, cfg)
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


def cell(folder: Path, threads: int) -> None:
    from emo.core.config import ALGORITHMS, Config
    from emo.experiment import run_experiment

    print(f"\n{'algorithm':<16}{'wall s':>8}{'dev RMSE V/A':>18}{'test RMSE V/A':>18}")
    total = 0.0
    for algorithm in ALGORITHMS:  # one at a time, to time each (the cell runs them in this order)
        config = Config(family="baseline", data=str(folder), threads=threads, algorithms=(algorithm,))
        t0 = time.perf_counter()
        child = run_experiment(config, track=False, progress=False).children[algorithm]
        wall = time.perf_counter() - t0
        total += wall
        rm = lambda m, s: f"{m[f'{s}/rmse_valence']:>10.4f}/{m[f'{s}/rmse_arousal']:.4f}"  # noqa: E731
        print(f"{algorithm:<16}{wall:>8.1f}{rm(child.dev, 'dev')}{rm(child.test, 'test')}", flush=True)
    exact_max = Config().svr_exact_max
    print(f"baseline cell: {total:.1f} s (SVR exact up to svr_exact_max = {exact_max} training frames)")


def compare(folder: Path, frames: int) -> None:
    from emo.core.metrics import rmse
    from emo.data.dataset import load_dataset
    from emo.data.inputs import build_inputs
    from emo.models.baselines import fit_baseline, predict_baseline

    inputs = build_inputs(load_dataset(folder), "frame")

    def arrays(split: str, limit: int | None = None):
        samples = inputs.samples[split]
        batch = samples.__getitems__(list(range(min(len(samples), limit or len(samples)))))
        return batch.video.numpy().astype(np.float64), batch.target.numpy().astype(np.float64)

    (x, y), (xd, yd), (xt, yt) = arrays("train", frames), arrays("dev"), arrays("test")
    print(f"\nSVR on {len(x)} training frames × {x.shape[1]} features (dev {len(xd)}, test {len(xt)} frames)")
    print(f"{'method':<36}{'fit s':>8}{'dev RMSE V/A':>18}{'test RMSE V/A':>18}")
    scores = {}
    for limit in (len(x), len(x) - 1):  # at the limit: exact; one frame over: linear time
        t0 = time.perf_counter()
        est, notes = fit_baseline("svr", x, y, xd, yd, svr_exact_max=limit)
        seconds = time.perf_counter() - t0
        pd, pt = predict_baseline(est, xd), predict_baseline(est, xt)
        dev = [rmse(yd[:, j], pd[:, j]) for j in range(2)]
        test = [rmse(yt[:, j], pt[:, j]) for j in range(2)]
        scores[notes["svr_method"]] = dev + test
        print(
            f"{notes['svr_method']:<36}{seconds:>8.1f}{dev[0]:>10.4f}/{dev[1]:.4f}{test[0]:>10.4f}/{test[1]:.4f}"
            f"   best {notes['svr_best_0']}, {notes['svr_best_1']}"
        )
    exact, fast = scores.pop("exact"), next(iter(scores.values()))
    ratios = [f / e for f, e in zip(fast, exact, strict=True)]
    print(
        "linear time / exact RMSE: dev V {:.3f} A {:.3f}, test V {:.3f} A {:.3f} (promise: at most 1.05)".format(
            *ratios
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=None, help="videos (default: the demo corpus, `synthetic`)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per video")
    parser.add_argument("--dim", type=int, default=32, help="face features per frame")
    parser.add_argument("--compare", type=int, default=2000, help="training frames of the exact-vs-fast fit")
    parser.add_argument("--no-cell", action="store_true", help="only the exact-vs-fast comparison")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str(Path(__file__).parent / ".data"))
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    folder = corpus(args)
    if not args.no_cell:
        cell(folder, args.threads)
    compare(folder, args.compare)


if __name__ == "__main__":
    main()
