"""Benchmark: MLflow server on PostgreSQL under concurrent trainings, and `mlflow models serve` of the champion.

    python bench/service.py                      # N = 1, 4, 16 logging processes × 50 epochs; 200 serving requests
    python bench/service.py --quick              # smoke run: N = 1, 2; 10 epochs; 20 requests
    python bench/service.py --clients 1,8 --epochs 100 --requests 500 --concurrency 8

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth, allowed to create databases); exits
with code 2 and one line if it is not reachable. Everything runs on 127.0.0.1: a fresh database
`emo_bench_<hex>` (dropped at the end), `mlflow server` on it (--workers 2, artifacts in a temporary
folder) and `mlflow models serve`.

Metric logging: for each N, N worker processes (spawned, each its own MLflow run) call
`mlflow.log_metrics(record, step=epoch)` --epochs times as fast as they can, where `record` is what
emo's trainer logs per epoch (train/loss, dev/loss, train/seconds, dev/{mae,rmse,ccc,r}_{valence,arousal}:
11 values; the call emo.runs.tracker.MlflowTracker.log_metrics makes). Printed: metric values written/s
and batches/s over the wall time of all N, and the p50/p99 latency of one batch.

Serving: a small Fusion 4 v2 is trained for one epoch with emo's run_experiment on a synthetic corpus
against the same server, registered with emo.runs.champion.register (so it is emo-fusion4@champion) and
served with `mlflow models serve --env-manager local --workers 1`. Requests carry 32 windows each;
printed: sequential requests/s and p50/p99 latency, and requests/s with --concurrency client threads.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
METRICS = ["train/loss", "dev/loss", "train/seconds"] + [
    f"dev/{m}_{t}" for m in ("mae", "rmse", "ccc", "r") for t in ("valence", "arousal")
]
BATCH = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, url: str, what: str, timeout: float = 120) -> subprocess.Popen:
    """Start `cmd` in its own session (output to `log`) and wait for `url` to answer 200."""
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    stop(proc)
    raise SystemExit(f"{what} did not answer {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def logger_worker(experiment_id: str, name: str, epochs: int, barrier, queue) -> None:
    """One simulated training: its own run, `epochs` log_metrics batches as fast as possible."""
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    sys.stdout = open(os.devnull, "w")  # mlflow writes "View run ... at" on end_run
    try:
        rng = np.random.default_rng()
        mlflow.start_run(experiment_id=experiment_id, run_name=name)
        barrier.wait(timeout=600)
        lat, t_start = [], time.perf_counter()
        for epoch in range(1, epochs + 1):
            record = {k: float(v) for k, v in zip(METRICS, rng.random(len(METRICS)))}
            t0 = time.perf_counter()
            mlflow.log_metrics(record, step=epoch)
            lat.append(time.perf_counter() - t0)
        t_end = time.perf_counter()
        mlflow.end_run()
        queue.put((lat, t_start, t_end))
    except BaseException as exc:  # reported by the parent, which does not wait for a barrier that broke
        barrier.abort()
        queue.put(f"{name}: {type(exc).__name__}: {exc}")


def bench_logging(n: int, epochs: int, experiment_id: str) -> tuple[int, float, list[float]]:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=logger_worker, args=(experiment_id, f"bench-n{n}-{i}", epochs, barrier, queue))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=900) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [r for r in results if isinstance(r, str)]
    if errors:
        raise SystemExit("a logging worker failed:\n" + "\n".join(errors))
    lat = [x for r in results for x in r[0]]
    wall = max(r[2] for r in results) - min(r[1] for r in results)
    return len(lat), wall, lat


def post(url: str, body: bytes) -> float:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            answer = json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"the served model answered {e.code}: {e.read()[:1000]!r}") from None
    dt = time.perf_counter() - t0
    if len(answer.get("predictions", [])) != BATCH:
        raise SystemExit(f"unexpected answer: {str(answer)[:500]}")
    return dt


def train_champion(tmp: Path) -> tuple[str, dict]:
    """Train and register a small Fusion 4 v2 on a synthetic corpus; return its run id and params."""
    import logging

    import mlflow

    from emo.core.config import Config
    from emo.data.synth import SynthConfig, synthesize
    from emo.experiment import run_experiment
    from emo.runs import champion

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    data = synthesize(tmp / "corpus", SynthConfig(videos=16, duration_s=30.0, dim=32, audio_dim=16, seed=0))
    cfg = Config(family="fusion", method=4, variant="v2", data=str(data), window=4, epochs=1, stride=4)
    quiet = io.StringIO()  # mlflow's "View run ..." and "Registered model ..." lines
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        result = run_experiment(cfg, progress=False, experiment="emo-bench-serving")
        run = mlflow.MlflowClient().get_run(result.run_id)
        reg = champion.register(run)
    if not reg.champion:
        raise SystemExit(f"the trained model did not become the champion: {reg}")
    return result.run_id, run.data.params


def bench_serving(port: int, params: dict, requests: int, concurrency: int) -> dict:
    frames, dim = int(params["dim_frames"]), int(params["dim_video_dim"])
    audio_len, audio_dim = int(params["dim_audio_len"]), int(params["dim_audio_dim"])
    rng = np.random.default_rng(0)
    mask = np.ones((BATCH, audio_len), bool)
    mask[::3, audio_len // 2 :] = False
    body = json.dumps(
        {
            "inputs": {
                "video": rng.normal(size=(BATCH, frames, dim)).round(4).tolist(),
                "audio": rng.normal(size=(BATCH, audio_len, audio_dim)).round(4).tolist(),
                "audio_mask": mask.tolist(),
            }
        }
    ).encode()
    url = f"http://127.0.0.1:{port}/invocations"
    for _ in range(3):  # warm-up
        post(url, body)
    t0 = time.perf_counter()
    lat = [post(url, body) for _ in range(requests)]
    seq_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        clat = list(pool.map(lambda _: post(url, body), range(requests)))
    con_wall = time.perf_counter() - t0
    return dict(
        shape=f"video ({BATCH}, {frames}, {dim}), audio ({BATCH}, {audio_len}, {audio_dim})",
        body_kib=len(body) / 1024,
        seq_rps=requests / seq_wall,
        p50=pct(lat, 50),
        p99=pct(lat, 99),
        con_rps=requests / con_wall,
        cp50=pct(clat, 50),
        cp99=pct(clat, 99),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", help="comma-separated numbers of concurrent logging processes (default 1,4,16)")
    p.add_argument("--epochs", type=int, help="log_metrics batches per logging process (default 50)")
    p.add_argument("--requests", type=int, help="serving requests, sequential then concurrent (default 200)")
    p.add_argument("--concurrency", type=int, default=4, help="client threads of the concurrent serving run")
    p.add_argument("--server-workers", type=int, default=2, help="mlflow server --workers")
    p.add_argument("--quick", action="store_true", help="smoke run: N = 1, 2; 10 epochs; 20 requests")
    args = p.parse_args()
    for name, full, quick in (("clients", "1,4,16", "1,2"), ("epochs", 50, 10), ("requests", 200, 20)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    clients = [int(c) for c in args.clients.split(",")]

    os.environ.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        NO_PROXY="127.0.0.1",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        no_proxy="127.0.0.1",
    )
    os.environ.pop("MLFLOW_RUN_ID", None)
    import mlflow
    import psycopg

    try:
        admin = psycopg.connect(ADMIN, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        print(
            f"PostgreSQL is not reachable at 127.0.0.1:5432 ({str(exc).strip().splitlines()[0]}); start it "
            f"(user postgres, trust auth) and run again.",
            file=sys.stderr,
        )
        sys.exit(2)
    pg_version = admin.execute("SHOW server_version").fetchone()[0]
    db = f"emo_bench_{uuid.uuid4().hex[:10]}"
    tmp = Path(tempfile.mkdtemp(prefix="emo-bench-service-"))
    server = serve = None
    try:
        admin.execute(f"CREATE DATABASE {db}")
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        os.environ.update(MLFLOW_TRACKING_URI=uri, EMO_CHECKPOINT_DIR=str(tmp / "checkpoints"))
        mlflow.set_tracking_uri(uri)
        print(
            f"mlflow {mlflow.__version__}, PostgreSQL {pg_version}, {os.cpu_count()} CPUs; mlflow server "
            f"--workers {args.server_workers} on database {db}",
            flush=True,
        )
        t0 = time.perf_counter()
        server = start(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"postgresql://postgres@127.0.0.1:5432/{db}",
                "--artifacts-destination",
                str(tmp / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.server_workers),
            ],
            tmp / "server.log",
            f"{uri}/health",
            "mlflow server",
            timeout=90,
        )
        print(f"server up in {time.perf_counter() - t0:.1f} s", flush=True)

        experiment_id = mlflow.create_experiment("emo-bench-logging")
        print(f"\nmetric logging: {len(METRICS)} metrics per log_metrics batch, {args.epochs} batches per process")
        print(f"{'N':>4} {'calls':>7} {'wall s':>7} {'values/s':>10} {'batches/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for n in clients:
            calls, wall, lat = bench_logging(n, args.epochs, experiment_id)
            print(
                f"{n:>4} {calls:>7} {wall:>7.2f} {calls * len(METRICS) / wall:>10,.0f} {calls / wall:>10,.1f} "
                f"{pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f}",
                flush=True,
            )

        t0 = time.perf_counter()
        run_id, params = train_champion(tmp)
        print(
            f"\nserving: trained and registered Fusion 4 v2 run {run_id} as emo-fusion4@champion in "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        sport = free_port()
        t0 = time.perf_counter()
        serve = start(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                "models:/emo-fusion4@champion",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(sport),
                "--workers",
                "1",
            ],
            tmp / "serve.log",
            f"http://127.0.0.1:{sport}/ping",
            "mlflow models serve",
            timeout=180,
        )
        print(f"mlflow models serve up in {time.perf_counter() - t0:.1f} s", flush=True)
        r = bench_serving(sport, params, args.requests, args.concurrency)
        print(f"requests of {BATCH} windows: {r['shape']}, {r['body_kib']:.0f} KiB of JSON")
        print(
            f"sequential      : {r['seq_rps']:7.1f} requests/s ({r['seq_rps'] * BATCH:,.0f} windows/s), "
            f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms ({args.requests} requests)"
        )
        print(
            f"{args.concurrency} client threads: {r['con_rps']:7.1f} requests/s "
            f"({r['con_rps'] * BATCH:,.0f} windows/s), p50 {r['cp50']:.1f} ms, p99 {r['cp99']:.1f} ms"
        )
    finally:
        stop(serve)
        stop(server)
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        finally:
            admin.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
