"""More workers of one matrix on this machine: the same `emo reproduce` command started again as child
processes that join its study, the way a worker on a second machine does (same storage, same study), so
that each cell runs on its own core. Each worker gets its share of the cores as torch threads (the full
demo matrix, 99 cells, took 26 min 50 s with two 1-thread workers on a 2-core AMD EPYC)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

from emo.core.errors import ConfigError

log = logging.getLogger(__name__)


def share_of_cores(workers: int) -> int:
    """Torch threads for each of `workers` workers on this machine: the cores divided among them."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {workers}).")
    return max(1, (os.cpu_count() or 1) // workers)


class LocalWorkers:
    """`count` child processes running `emo reproduce ARGS` for study `study_name`, each writing its output to
    `logs/worker-K.log`; stopped with this process (Ctrl-C, SIGTERM), waited for otherwise."""

    def __init__(self, args: list[str], study_name: str, count: int, threads: int, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_RUN_ID"}  # they join the matrix's parent run
        self.logs = [logs / f"worker-{k + 1}.log" for k in range(count)]
        self.procs = []
        for path in self.logs:
            command = [sys.executable, "-m", "emo.cli", "reproduce", *args]
            command += ["--study-name", study_name, "--workers", "1", "--threads", str(threads)]
            with open(path, "w") as out:
                self.procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env))
        log.info("%d more workers of %s started on this machine (output: %s)", count, study_name, logs)

    def wait(self) -> list[str]:
        """Wait for every worker; a sentence for each one that failed."""
        failed = []
        for proc, path in zip(self.procs, self.logs, strict=True):
            if proc.wait() != 0:
                failed.append(f"worker {path.stem} ended with exit code {proc.returncode} (see {path})")
        return failed

    def stop(self) -> None:
        """End the workers as a stop signal ends this process (their runs end KILLED)."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
