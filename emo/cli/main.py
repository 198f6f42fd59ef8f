"""The `emo` command: the group, how it ends (errors, signals), and where each area's commands come from:
`data.py` and `data_import.py` (emo data …), `extract.py`, `train.py`, `studies.py` (tune, reproduce),
`results.py` (report, register, predict); their shared options are in `options.py`."""

from __future__ import annotations

import logging
import os
import signal
import sys

# OpenMP threads waiting for work spin on their core by default. On a machine shared with other work
# (or other emo workers) they steal it: a 2-thread training step ran 2.4x slower than a 1-thread one
# beside one busy process, and at the 1-thread speed with PASSIVE (bench/training.py --busy 1). Sleeping
# waiters cost 16-27% on an idle machine; OMP_WAIT_POLICY=ACTIVE there takes it back. Read once, when
# torch loads OpenMP: set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click

from emo import __version__
from emo.core import signals
from emo.core.errors import EmoError


class EmoGroup(click.Group):
    """Turns an EmoError anywhere below into a one-paragraph message and exit code 2, and SIGINT or
    SIGTERM into exit code 130 or 143."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            # 128 + the signal, as a shell reports a process the signal ended: schedulers and `mlflow run`
            # tell "stopped" from "failed" by it (click would exit 1 with "Aborted!")
            signum = getattr(exc, "signum", signal.SIGINT)
            click.echo(f"interrupted by {signal.Signals(signum).name}", err=True)
            ctx.exit(128 + signum)
        except EmoError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except Exception as exc:
            if not type(exc).__module__.startswith(("mlflow", "optuna")):
                raise
            # the store or server refused something: its own message says what, no traceback needed
            text = str(exc).strip().splitlines()
            click.echo(
                f"error: {type(exc).__module__.split('.')[0]} said: {text[0] if text else type(exc).__name__}", err=True
            )
            ctx.exit(2)


@click.group(cls=EmoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="emo")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """emo: audio-visual valence/arousal emotion recognition experiments.

    \b
    emo data synth   write a synthetic SEWA- or AFEW-VA-like dataset folder
    emo data import  import a corpus as distributed (avec, afew-va, affwild2, muse, recola, csv)
    emo extract      eGeMAPS audio functionals and face features from recordings, offline
    emo data check   validate a dataset folder and summarise it
    emo data split   make (or show) the dataset's train/dev/test split by video
    emo train FAMILY train one model family (baseline, ffnn, video, audio, fusion), tracked in MLflow
    emo tune         run or join an Optuna study (default: Fusion 4 v2), one MLflow run per trial
    emo register     register the best Fusion 4 run as emo-fusion4 (champion if it beats the current one)
    emo predict      predict a dataset split with a logged or registered model
    emo reproduce    run the thesis's experiment matrix (cells × seeds), shareable between workers
    emo report       rebuild the thesis's tables (Markdown, CSV, an HTML page) from a matrix's runs
    emo mlproject    regenerate the MLproject file from emo's settings
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # `docker stop` and schedulers send SIGTERM: end like Ctrl-C, so open runs are closed as KILLED
    signals.install()


@main.command("mlproject")
@click.option("--check", is_flag=True, help="Only check that MLproject is up to date (exit 1 when it is not).")
@click.option("--path", type=click.Path(dir_okay=False), default="MLproject", show_default=True)
def mlproject_cmd(check, path):
    """Write the MLproject file from emo's settings (every default declared once, in emo)."""
    from pathlib import Path

    from emo.cli.mlproject import render

    text, target = render(main), Path(path)
    if check:
        same = target.exists() and target.read_text() == text
        click.echo(f"{target} is {'up to date' if same else 'out of date: run `emo mlproject`'}")
        raise SystemExit(0 if same else 1)
    target.write_text(text)
    click.echo(f"wrote {target}")


def _register_subcommands() -> None:
    from emo.cli.data import data
    from emo.cli.data_import import import_group
    from emo.cli.extract import extract
    from emo.cli.results import predict_cmd, register_cmd, report_cmd
    from emo.cli.studies import reproduce_cmd, tune_cmd
    from emo.cli.train import train_group

    data.add_command(import_group)
    for command in (data, train_group, tune_cmd, reproduce_cmd, report_cmd, register_cmd, predict_cmd, extract):
        main.add_command(command)


_register_subcommands()
