"""Benchmark: training samples/s per model family, and the share of an epoch spent in MLflow logging + checkpointing.

    python bench/training.py                          # 60 videos × 120 s synthetic corpus, every model (minutes)
    python bench/training.py --quick                  # smoke run: tiny corpus, few batches
    python bench/training.py --scale sewa             # SEWA-size corpus (540 videos × 300 s; slow to generate once)
    python bench/training.py --models fusion4-v2,video --device cpu,cuda

The synthetic corpus (emo.data.synth) is generated once into --data-dir (default bench/.data/) and reused.
Each model (4 s windows; ffnn on frames, audio on audio_4s rows) runs `emo.trainer.train` itself for one
epoch on a random subset of --batches × --batch-size train samples (after a short warm-up), evaluated on a
random dev subset of the same size; the epoch is then extrapolated to the full splits. One epoch's tracking
is timed as emo's experiment does it (`MlflowTracker.log_metrics` of the epoch record + `log_checkpoint` of
`checkpoint(...)`) against a sqlite store in a temporary folder. SEWA columns scale the measured rates, so
they mean something only for a corpus with SEWA's widths (512 / 88: the default and sewa, not --quick). On a
shared machine torch's threads wait on each other; --threads 1 then gives steadier numbers. Columns:

  train n     training samples in the train split of the measured corpus
  samples/s   training samples per second: gather, forward, RMSE loss, backward, Adam step
  s/epoch     full train split + dev evaluation, extrapolated from the timed batches; SEWA s/ep: the same
              for SEWA's size (540 videos × 300 s × 5 fps, 70/15/15 split by video, stride 1)
  track ms    one epoch's log_metrics + log_checkpoint (model, Adam state, best weights), median of --track-reps
  track %     track / (epoch + track), measured corpus; SEWA %: at SEWA scale (target: under 5 %)
  gathers     __getitems__ calls / batches in the timed epoch (one gather per batch: no per-sample Python work)
  RSS MiB     peak resident memory of the process during the timed epoch (+ its rise over the RSS before)
  CUDA MiB    torch.cuda.max_memory_allocated during the timed epoch (GPU runs only)
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from emo.config import Config
from emo.data.dataset import load_dataset
from emo.data.inputs import build_inputs
from emo.data.split import make_split
from emo.data.synth import SCALES, SynthConfig, synthesize
from emo.experiment import seed_everything
from emo.models import create_model
from emo.trainer import checkpoint, pick_device, train

from memory import reset_rss_peak, rss_peak  # bench/memory.py

WINDOW = 4.0
MODELS = {"ffnn": {"family": "ffnn"}, "audio": {"family": "audio"}, "video": {"family": "video", "pooling": "avg"},
          **{f"fusion{m}": {"family": "fusion", "method": m} for m in (1, 2, 3)},
          **{f"fusion4-{v}": {"family": "fusion", "method": 4, "variant": v} for v in ("v1", "v2", "v3")}}
CORPORA = {"quick": {"videos": 12, "duration_s": 30.0, "dim": 64, "audio_dim": 16, "fmt": "parquet"},
           "mid": {"videos": 60, "duration_s": 120.0, "dim": 512, "audio_dim": 88, "fmt": "parquet"},
           "sewa": SCALES["sewa"]}


class Timed(torch.utils.data.Dataset):
    """A random subset of a samples object that counts its `__getitems__` calls and stamps the first one."""

    def __init__(self, samples, n: int, seed: int = 0):
        self.samples, self.calls, self.first = samples, 0, None
        self.index = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))[:n]

    def __len__(self) -> int:
        return len(self.index)

    def __getitems__(self, idx):
        if self.first is None:
            self.first = time.perf_counter()
        self.calls += 1
        return self.samples.__getitems__(self.index[torch.as_tensor(idx, dtype=torch.long)])


def corpus(args) -> Path:
    cfg = SynthConfig(**CORPORA[args.scale])
    folder = Path(args.data_dir) / f"sewa-{cfg.videos}x{cfg.duration_s:g}s-{cfg.dim}d-{cfg.audio_dim}a"
    if not (folder / "meta.json").exists():
        print(f"generating the synthetic corpus in {folder} (once) ...", flush=True)
        t0 = time.perf_counter()
        synthesize(folder, cfg)
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder


def sewa_sizes(kind: str) -> tuple[int, int]:
    """(train, dev) samples of `kind` at SEWA's size with emo's split and 4 s windows, stride 1."""
    s = SynthConfig(**SCALES["sewa"])
    split = make_split([f"S{i:04d}" for i in range(s.videos)]).sizes()
    frames = int(s.duration_s * s.fps)
    per_video = {"frame": frames, "audio": int(math.floor((s.duration_s - WINDOW) / s.audio_hop_s + 1e-9)) + 1,
                 "window": frames - int(WINDOW * s.fps) + 1, "fusion": frames - int(WINDOW * s.fps) + 1}
    return split["train"] * per_video[kind], split["dev"] * per_video[kind]


def track_epoch(tracked_run, name: str, cfg: Config, dims: dict, saved: dict, reps: int) -> float:
    """Median seconds of one epoch's tracking, done as emo.experiment's epoch_end does it."""
    state, net, optimizer, generator = saved["args"]
    record = {k: v for k, v in state.history[-1].items() if k not in ("epoch", "improved")}
    times = []
    with tracked_run(run_name=f"bench-{name}", experiment="emo-bench", tags={"emo.model": cfg.model_name}) as tracker:
        for rep in range(reps):
            t0 = time.perf_counter()
            tracker.log_metrics(record, step=state.epoch + rep)
            tracker.log_checkpoint(checkpoint(state, net, optimizer, generator, config=cfg.to_dict(),
                                              model_name=cfg.model_name, dims=dims))
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, cfg: Config, inputs, args, device: torch.device, tracked_run) -> dict:
    seed_everything(cfg.seed)
    model = create_model(cfg.model_name, **cfg.model_kwargs(), **inputs.dims)
    tr, dv = inputs.samples["train"], inputs.samples["dev"]
    n = min(len(tr), args.batches * args.batch_size)
    kw = dict(epochs=1, patience=1, lr=cfg.lr, batch_size=args.batch_size, loss=cfg.loss, seed=cfg.seed,
              device=device, progress=False)
    train(model, Timed(tr, min(len(tr), args.warmup * args.batch_size), 1), Timed(dv, min(len(dv), 512), 1), **kw)
    train_set, dev_set, saved = Timed(tr, n), Timed(dv, min(len(dv), n)), {}

    def epoch_end(state, net, optimizer, generator):
        saved["end"], saved["args"] = time.perf_counter(), (state, net, optimizer, generator)

    rss0 = reset_rss_peak()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    train(model, train_set, dev_set, on_epoch=epoch_end, **kw)
    rss = rss_peak()
    loop = dev_set.first - train_set.first  # every train batch, gathers included (the loop syncs on .item())
    dev = saved["end"] - dev_set.first  # predict on the dev subset, dev loss, best-weights copy, metrics
    rate, dev_rate = n / loop, len(dev_set) / dev
    track = track_epoch(tracked_run, name, cfg, inputs.dims, saved, args.track_reps)
    epoch = len(tr) / rate + len(dv) / dev_rate
    sewa_train, sewa_dev = sewa_sizes(inputs.kind)
    sewa_epoch = sewa_train / rate + sewa_dev / dev_rate
    return {"model": name, "train n": f"{len(tr):,}", "samples/s": f"{rate:,.0f}", "s/epoch": f"{epoch:,.1f}",
            "SEWA s/ep": f"{sewa_epoch:,.0f}", "track ms": f"{track * 1e3:,.0f}",
            "track %": f"{100 * track / (epoch + track):.2f}", "SEWA %": f"{100 * track / (sewa_epoch + track):.3f}",
            "gathers": f"{train_set.calls}/{math.ceil(n / args.batch_size)}",
            "RSS MiB": "n/a" if rss is None else f"{rss / 2**20:,.0f} (+{(rss - rss0) / 2**20:,.0f})",
            **({"CUDA MiB": f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f}"} if device.type == "cuda" else {})}


def print_table(rows: list[dict]) -> None:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(width[c]) if c == "model" else c.rjust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(width[c]) if c == "model" else r[c].rjust(width[c]) for c in cols), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", choices=("mid", "sewa"), default="mid",
                   help="mid: 60 videos × 120 s, 512-dim (default); sewa: 540 videos × 300 s")
    p.add_argument("--quick", action="store_true", help="tiny corpus and few batches: a smoke run")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    p.add_argument("--batches", type=int, default=100, help="timed training batches per model")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up batches per model")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--track-reps", type=int, default=5, help="timed tracking repetitions per model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, or a comma list (cpu,cuda)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parent / ".data"))
    args = p.parse_args()
    if args.quick:
        args.scale, args.batches, args.warmup, args.track_reps = "quick", 5, 2, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")

    tmp = tempfile.TemporaryDirectory(prefix="emo-bench-")
    os.environ.pop("MLFLOW_RUN_ID", None)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp.name}/mlflow.db"
    os.environ["EMO_CHECKPOINT_DIR"] = f"{tmp.name}/checkpoints"
    import mlflow

    from emo.tracking import tracked_run

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not the store's "creating tables" notes

    mlflow.create_experiment("emo-bench", artifact_location=Path(tmp.name, "artifacts").as_uri())

    folder = corpus(args)
    ds = load_dataset(folder)
    cache = {}
    for device_name in args.device.split(","):
        device = pick_device(device_name.strip())
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})"
        print(f"\ncorpus {folder.name}: {len(ds.video.video_ids)} videos, {ds.video.n_rows:,} frames × {ds.video.dim}, "
              f"split {ds.split.sizes()}; device {label}; torch {torch.__version__}; batch {args.batch_size}, "
              f"{args.batches} timed batches per model (epochs extrapolated from them)", flush=True)
        if device.type == "cpu" and os.getloadavg()[0] > os.cpu_count() - 0.5 and torch.get_num_threads() > 1:
            print("note: other processes are using the CPU cores; torch threads then wait on each other (try --threads 1)")
        rows = []
        for name in names:
            cfg = Config(data=str(folder), window=WINDOW, device=device.type, **MODELS[name])
            key = (cfg.input_kind, cfg.window_label)
            if key not in cache:
                cache[key] = build_inputs(ds, cfg.input_kind, window_s=cfg.window, label=cfg.window_label,
                                          stride=cfg.stride, audio_window=cfg.audio_window, audio_len=cfg.audio_len)
            rows.append(measure(name, cfg, cache[key], args, device, tracked_run))
        print_table(rows)
    tmp.cleanup()


if __name__ == "__main__":
    main()
