"""One progress display at a time: a long command's bar, with log lines printed above it and MLflow's
own artifact bars (one per logged model or downloaded table) kept off while it runs."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from tqdm.auto import tqdm

ARTIFACT_BARS = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# MLflow's logger has a console handler of its own and does not propagate to the root's
LOGGERS = ("", "mlflow")


class _AboveTheBar(logging.Handler):
    """Writes each record on a line of its own above the bar, which is drawn again below it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _logs_above_the_bar():
    swapped = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler:  # a console handler (a FileHandler is left alone)
                above = _AboveTheBar(handler.level)
                above.setFormatter(handler.formatter)
                swapped.append((logger, handler, above))
    for logger, console, above in swapped:
        logger.removeHandler(console)
        logger.addHandler(above)
    try:
        yield
    finally:
        for logger, console, above in swapped:
            logger.removeHandler(above)
            logger.addHandler(console)


@contextlib.contextmanager
def progress_bar(**options):
    """A tqdm bar (`options` as tqdm's) that is the only progress display inside the block."""
    if options.get("disable"):
        with tqdm(**options) as bar:
            yield bar
        return
    with no_artifact_bars(), _logs_above_the_bar(), tqdm(**options) as bar:
        yield bar


@contextlib.contextmanager
def no_artifact_bars():
    """No MLflow download bar inside the block (one per artifact read would bury what matters)."""
    before = os.environ.get(ARTIFACT_BARS)
    os.environ[ARTIFACT_BARS] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ARTIFACT_BARS, None)
        else:
            os.environ[ARTIFACT_BARS] = before
