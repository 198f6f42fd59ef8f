"""Stop signals (SIGINT, SIGTERM) as an exception, held back while a tracking-store call is under way.

A signal raised in the middle of a store call can leave its transaction unfinished: with a sqlite store
the unfinished transaction keeps the database locked, and the run could not be ended KILLED afterwards.
`shielded` blocks run their store calls whole; a signal that arrives inside one is raised as soon as the
outermost block ends (at most one store call late)."""

from __future__ import annotations

import contextlib
import signal

_depth = 0
_pending: int | None = None


class Stopped(KeyboardInterrupt):
    """A stop signal, raised like Ctrl-C's KeyboardInterrupt (open runs end as KILLED) and carrying the
    signal, so that the exit code can say which one stopped emo."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _on_signal(signum, frame):
    global _pending
    if _depth:
        _pending = signum
    else:
        raise Stopped(signum)


def install() -> None:
    """Turn SIGINT and SIGTERM into `Stopped` (`docker stop` and schedulers send SIGTERM)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)


class _Shielded(contextlib.ContextDecorator):
    """A block (`with shielded:`) or function (`@shielded`) that a stop signal does not interrupt; the
    signal is raised when it ends."""

    def __enter__(self):
        global _depth
        _depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        global _depth, _pending
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            if exc_type is None:
                raise Stopped(signum)
        return False


shielded = _Shielded()
