"""Benchmark: training speed per model, precision and thread count, against the machine's matmul peak;
the share of an epoch spent in MLflow logging + checkpointing; fp32 vs bf16 accuracy.

    python bench/training.py                          # 60 videos × 120 s synthetic corpus, every model (minutes)
    python bench/training.py --quick                  # smoke run: tiny corpus, few batches
    python bench/training.py --models fusion4-v2,video --threads 1,2 --precision fp32,bf16
    python bench/training.py --busy 1 --threads 1,2   # a machine shared with one busy process
    python bench/training.py --models fusion4-v2 --accuracy 5   # + dev RMSE after 5 epochs, fp32 vs bf16
    python bench/training.py --scale sewa             # SEWA-size corpus (540 videos × 300 s; slow to generate once)
    python bench/training.py --models fusion4-v2,video --device cpu,cuda

The synthetic corpus (emo.data.synth) is generated once into --data-dir (default bench/.data/) and reused.
Each model (4 s windows; ffnn on frames, audio on audio_4s rows) runs `emo.trainer.train` itself for one
epoch on a random subset of --batches × --batch-size train samples (after a short warm-up), for every
(threads, precision) pair, round-robin --repeats times (the median is shown: a shared machine is noisy).
Speed table:

  samples/s   training samples per second: gather, forward, RMSE loss, backward, Adam step
  × fp32      samples/s over fp32's at the same thread count
  MFLOP/smp   matmul/conv FLOPs of one sample's forward + backward (torch's FLOP counter, fp32)
  GFLOP/s     MFLOP/smp × samples/s: the useful arithmetic rate
  % peak      GFLOP/s over the peak of a 2048² matmul in the same precision and threads, measured in this run

Epoch table (threads and precision of the first speed row): an epoch extrapolated from the timed
batches, and one epoch's tracking timed as emo.experiment does it (`MlflowTracker.log_metrics` of the
epoch record + `log_checkpoint` of `checkpoint(...)`) against a sqlite store in a temporary folder. SEWA
columns scale the measured rates, so they mean something only for a corpus with SEWA's widths (512 / 88:
the default and sewa, not --quick).

  s/epoch     full train split + dev evaluation, extrapolated from the timed batches; SEWA s/ep: the same
              for SEWA's size (540 videos × 300 s × 5 fps, 70/15/15 split by video, stride 1)
  track ms    one epoch's log_metrics + log_checkpoint (model, Adam state, best weights), median of --track-reps
  track %     track / (epoch + track), measured corpus; SEWA %: at SEWA scale (target: under 5 %)
  gathers     __getitems__ calls / batches in the timed epoch (one gather per batch: no per-sample Python work)
  RSS MiB     peak resident memory of the process during the timed epoch (+ its rise over the RSS before)
  CUDA MiB    torch.cuda.max_memory_allocated during the timed epoch (GPU runs only)

OpenMP reads OMP_WAIT_POLICY when torch is imported, so compare wait policies by running the bench
twice (emo's own commands default it to PASSIVE; see the README's "Speed: threads, precision, GPUs").
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from memory import reset_rss_peak, rss_peak  # bench/memory.py

from emo.core.compute import DTYPES, check_precision, pick_device
from emo.core.config import Config
from emo.core.errors import ConfigError
from emo.core.metrics import evaluate
from emo.data.dataset import load_dataset
from emo.data.split import make_split
from emo.data.synth import SCALES, SynthConfig, synthesize
from emo.experiment import prepare_inputs, seed_everything
from emo.models import create_model
from emo.trainer import LOSSES, checkpoint, predict, train

WINDOW = 4.0
MODELS = {
    "ffnn": {"family": "ffnn"},
    "audio": {"family": "audio"},
    "video": {"family": "video", "pooling": "avg"},
    **{f"fusion{m}": {"family": "fusion", "method": m} for m in (1, 2, 3)},
    **{f"fusion4-{v}": {"family": "fusion", "method": 4, "variant": v} for v in ("v1", "v2", "v3")},
}
CORPORA = {
    "quick": {"videos": 12, "duration_s": 30.0, "dim": 64, "audio_dim": 16, "fmt": "parquet"},
    "mid": {"videos": 60, "duration_s": 120.0, "dim": 512, "audio_dim": 88, "fmt": "parquet"},
    "sewa": SCALES["sewa"],
}


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
    per_video = {
        "frame": frames,
        "audio": int(math.floor((s.duration_s - WINDOW) / s.audio_hop_s + 1e-9)) + 1,
        "window": frames - int(WINDOW * s.fps) + 1,
        "fusion": frames - int(WINDOW * s.fps) + 1,
    }
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
            tracker.log_checkpoint(
                checkpoint(state, net, optimizer, generator, config=cfg.to_dict(), model_name=cfg.model_name, dims=dims)
            )
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timed_epoch(cfg: Config, inputs, args, device: torch.device, precision: str) -> dict:
    """One timed training epoch on --batches batches (after an untimed warm-up), as emo's trainer runs it."""
    seed_everything(cfg.seed)
    model = create_model(cfg.model_name, **cfg.model_kwargs(), **inputs.dims)
    tr, dv = inputs.samples["train"], inputs.samples["dev"]
    n = min(len(tr), args.batches * args.batch_size)
    kw = dict(
        epochs=1,
        patience=1,
        lr=cfg.lr,
        batch_size=args.batch_size,
        loss=cfg.loss,
        seed=cfg.seed,
        device=device,
        precision=precision,
        progress=False,
    )
    train(model, Timed(tr, min(len(tr), args.warmup * args.batch_size), 1), Timed(dv, min(len(dv), 512), 1), **kw)
    train_set, dev_set, saved = Timed(tr, n), Timed(dv, min(len(dv), n)), {}

    def epoch_end(state, net, optimizer, generator):
        saved["end"], saved["args"] = time.perf_counter(), (state, net, optimizer, generator)

    rss0 = reset_rss_peak()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    train(model, train_set, dev_set, on_epoch=epoch_end, **kw)
    loop = dev_set.first - train_set.first  # every train batch, gathers included (the loop syncs once per epoch)
    dev = saved["end"] - dev_set.first  # predict on the dev subset, dev loss, best-weights copy, metrics
    return {
        "rate": n / loop,
        "dev_rate": len(dev_set) / dev,
        "saved": saved,
        "rss": rss_peak(),
        "rss0": rss0,
        "gathers": f"{train_set.calls}/{math.ceil(n / args.batch_size)}",
        "cuda": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
    }


def epoch_row(name: str, cfg: Config, inputs, timed: dict, args, tracked_run) -> dict:
    """An epoch of the full splits, extrapolated from `timed`, and one epoch's tracking."""
    tr, dv = inputs.samples["train"], inputs.samples["dev"]
    track = track_epoch(tracked_run, name, cfg, inputs.dims, timed["saved"], args.track_reps)
    epoch = len(tr) / timed["rate"] + len(dv) / timed["dev_rate"]
    sewa_train, sewa_dev = sewa_sizes(inputs.kind)
    sewa_epoch = sewa_train / timed["rate"] + sewa_dev / timed["dev_rate"]
    rss, rss0 = timed["rss"], timed["rss0"]
    return {
        "model": name,
        "train n": f"{len(tr):,}",
        "s/epoch": f"{epoch:,.1f}",
        "SEWA s/ep": f"{sewa_epoch:,.0f}",
        "track ms": f"{track * 1e3:,.0f}",
        "track %": f"{100 * track / (epoch + track):.2f}",
        "SEWA %": f"{100 * track / (sewa_epoch + track):.3f}",
        "gathers": timed["gathers"],
        "RSS MiB": "n/a" if rss is None else f"{rss / 2**20:,.0f} (+{(rss - rss0) / 2**20:,.0f})",
        **({"CUDA MiB": f"{timed['cuda'] / 2**20:,.0f}"} if timed["cuda"] is not None else {}),
    }


def matmul_peak(precision: str, device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """FLOP/s of the fastest of `reps` n×n matmuls in `precision` (the machine's practical peak)."""
    dtype = {"fp32": torch.float32, **DTYPES}[precision]
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    best = math.inf
    for _ in range(reps + 1):  # the first is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def flops_per_sample(cfg: Config, inputs) -> float:
    """Matmul/conv FLOPs of one training sample: forward, loss and backward, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    model = create_model(cfg.model_name, **cfg.model_kwargs(), **inputs.dims)
    batch = inputs.samples["train"].__getitems__(list(range(min(64, len(inputs.samples["train"])))))
    with FlopCounterMode(display=False) as counter:
        LOSSES[cfg.loss](model(**batch.inputs()), batch.target).backward()
    return counter.get_total_flops() / len(batch)


def speed_rows(name: str, rates: dict, peaks: dict, flops: float) -> list[dict]:
    rows = []
    for (threads, precision), values in rates.items():
        rate = statistics.median(values)
        reference = rates.get((threads, "fp32"))
        achieved = flops * rate
        rows.append(
            {
                "model": name,
                "threads": str(threads),
                "precision": precision,
                "samples/s": f"{rate:,.0f}",
                "× fp32": f"{rate / statistics.median(reference):.2f}" if reference else "",
                "MFLOP/smp": f"{flops / 1e6:,.1f}",
                "GFLOP/s": f"{achieved / 1e9:,.1f}",
                "% peak": f"{100 * achieved / peaks[threads, precision]:.0f}",
            }
        )
    return rows


def accuracy_rows(name: str, cfg: Config, inputs, args, device: torch.device, precisions: list[str]) -> list[dict]:
    """Dev RMSE after --accuracy epochs on the full splits, one row per precision, from the same seed."""
    rows = []
    for precision in precisions:
        seed_everything(cfg.seed)
        model = create_model(cfg.model_name, **cfg.model_kwargs(), **inputs.dims)
        t0 = time.perf_counter()
        state = train(
            model,
            inputs.samples["train"],
            inputs.samples["dev"],
            epochs=args.accuracy,
            patience=args.accuracy,
            lr=cfg.lr,
            batch_size=args.batch_size,
            loss=cfg.loss,
            seed=cfg.seed,
            device=device,
            precision=precision,
            progress=False,
        )
        y, p = predict(model, inputs.samples["dev"], device=device, precision=precision)
        dev = evaluate(y, p, "dev/")
        rows.append(
            {
                "model": name,
                "precision": precision,
                "epochs": str(state.epoch),
                "best epoch": str(state.best_epoch),
                "dev RMSE V": f"{dev['dev/rmse_valence']:.4f}",
                "dev RMSE A": f"{dev['dev/rmse_arousal']:.4f}",
                "dev RMSE mean": f"{(dev['dev/rmse_valence'] + dev['dev/rmse_arousal']) / 2:.4f}",
                "dev CCC V": f"{dev['dev/ccc_valence']:.3f}",
                "dev CCC A": f"{dev['dev/ccc_arousal']:.3f}",
                "seconds": f"{time.perf_counter() - t0:,.0f}",
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(width[c]) if c == "model" else c.rjust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(width[c]) if c == "model" else r[c].rjust(width[c]) for c in cols), flush=True)


def busy(processes: int) -> list[subprocess.Popen]:
    """`processes` CPU-bound processes, standing for the other work on a shared machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--scale",
        choices=("mid", "sewa"),
        default="mid",
        help="mid: 60 videos × 120 s, 512-dim (default); sewa: 540 videos × 300 s",
    )
    p.add_argument("--quick", action="store_true", help="tiny corpus and few batches: a smoke run")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    p.add_argument("--batches", type=int, default=60, help="timed training batches per model and setting")
    p.add_argument("--warmup", type=int, default=5, help="untimed warm-up batches per model and setting")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="round-robin repetitions of every setting (median shown)")
    p.add_argument("--track-reps", type=int, default=5, help="timed tracking repetitions per model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, or a comma list (cpu,cuda)")
    p.add_argument("--threads", default=f"1,{os.cpu_count()}", help="comma list of torch CPU thread counts")
    p.add_argument(
        "--precision",
        default="fp32,bf16",
        help="comma list of fp32, bf16, fp16 (those the device cannot run are skipped)",
    )
    p.add_argument("--busy", type=int, default=0, help="start this many CPU-bound processes alongside")
    p.add_argument(
        "--accuracy",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="also train each model EPOCHS epochs on the full splits per precision; print dev RMSE",
    )
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parent / ".data"))
    args = p.parse_args()
    if args.quick:
        args.scale, args.batches, args.warmup, args.track_reps, args.repeats = "quick", 5, 2, 2, 1
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    thread_counts = sorted({int(t) for t in args.threads.split(",")})
    precisions = [x.strip() for x in args.precision.split(",") if x.strip()]

    tmp = tempfile.TemporaryDirectory(prefix="emo-bench-")
    os.environ.pop("MLFLOW_RUN_ID", None)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp.name}/mlflow.db"
    os.environ["EMO_CHECKPOINT_DIR"] = f"{tmp.name}/checkpoints"
    import mlflow

    from emo.runs.lifecycle import tracked_run

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not the store's "creating tables" notes

    mlflow.create_experiment("emo-bench", artifact_location=Path(tmp.name, "artifacts").as_uri())

    folder = corpus(args)
    ds = load_dataset(folder)
    cache = {}
    others = busy(args.busy)
    try:
        for device_name in args.device.split(","):
            device = pick_device(device_name.strip())
            usable = []
            for precision in precisions:
                try:
                    check_precision(precision, device)
                    usable.append(precision)
                except ConfigError as exc:
                    print(f"skipping {precision}: {exc}")
            counts = thread_counts if device.type == "cpu" else [torch.get_num_threads()]
            peaks = {}
            for threads in counts:
                torch.set_num_threads(threads)
                peaks.update({(threads, precision): matmul_peak(precision, device) for precision in usable})
            label = (
                torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else f"CPU ({os.cpu_count()} cores, {args.busy} busy processes alongside, load "
                f"{os.getloadavg()[0]:.1f}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})"
            )
            print(
                f"\ncorpus {folder.name}: {len(ds.video.video_ids)} videos, {ds.video.n_rows:,} frames × "
                f"{ds.video.dim}, split {ds.split.sizes()}; device {label}; torch {torch.__version__}; batch "
                f"{args.batch_size}, {args.batches} timed batches per setting × {args.repeats} repeats",
                flush=True,
            )
            print(
                "matmul peak (2048², GFLOP/s): "
                + ", ".join(
                    f"{precision} {threads} thread{'s' * (threads > 1)} {peak / 1e9:,.0f}"
                    for (threads, precision), peak in peaks.items()
                )
            )
            speed, epochs, accuracy = [], [], []
            for name in names:
                cfg = Config(data=str(folder), window=WINDOW, device=device.type, **MODELS[name])
                key = (cfg.input_kind, cfg.window_label)
                if key not in cache:
                    cache[key] = prepare_inputs(cfg, ds)[1]  # the inputs a training of cfg reads
                inputs = cache[key]
                torch.set_num_threads(counts[0])
                flops = flops_per_sample(cfg, inputs)
                rates, first = {(t, p): [] for t in counts for p in usable}, None
                for _ in range(args.repeats):
                    for threads, precision in rates:
                        torch.set_num_threads(threads)
                        timed = timed_epoch(cfg, inputs, args, device, precision)
                        rates[threads, precision].append(timed["rate"])
                        first = first or timed
                rows = speed_rows(name, rates, peaks, flops)
                print_table(rows)
                speed += rows
                torch.set_num_threads(counts[0])
                epochs.append(epoch_row(name, cfg, inputs, first, args, tracked_run))
                if args.accuracy:
                    accuracy += accuracy_rows(name, cfg, inputs, args, device, usable)
            print(f"\nspeed ({device.type})")
            print_table(speed)
            print(f"\nepoch and tracking ({counts[0]} thread{'s' * (counts[0] > 1)}, {usable[0]})")
            print_table(epochs)
            if accuracy:
                print(f"\ndev accuracy after {args.accuracy} epochs, same seed ({counts[0]} threads)")
                print_table(accuracy)
    finally:
        for process in others:
            process.kill()
    tmp.cleanup()


if __name__ == "__main__":
    main()
