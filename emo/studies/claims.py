"""Once-only steps between workers that share an Optuna storage: a row in that storage's database.

`claim(storage, key)` inserts a row under a primary key; the database lets exactly one insert of a
key succeed, whatever the number of workers, their clocks or how they end. It elects a shared
study's parent run, and the one worker that tests and registers its winner.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import sqlalchemy as sa

from emo.core.errors import WaitedTooLong

_METADATA = sa.MetaData()
CLAIMS = sa.Table(
    "emo_claims",
    _METADATA,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)


def _engine(storage) -> sa.engine.Engine:
    engine = getattr(storage, "engine", None)
    if engine is None:
        raise TypeError(f"{type(storage).__name__} has no database engine: once-only steps need an RDB storage")
    return engine


def _retrying(storage):
    """The storage's way of waiting out a database outage (emo.studies.storage.Outage), else a plain call."""
    return getattr(storage, "retry", None) or (lambda fn, *args, **kwargs: fn(*args, **kwargs))


def claim(storage, key: str, *, stale_after: float | None = None) -> bool:
    """True for the one caller that first claims `key` in `storage`'s database, False for every other.
    A claim older than `stale_after` seconds is taken over (its holder died before finishing). Each
    statement waits out a database outage like every other storage call of the worker."""
    engine, call = _engine(storage), _retrying(storage)
    for attempt in range(3):
        try:
            call(_METADATA.create_all, engine, checkfirst=True)
            break
        except sa.exc.DatabaseError:  # two workers creating the table at once: the loser finds it there
            time.sleep(0.2 * (attempt + 1))
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this call's, not the process's

    def insert() -> None:
        with engine.begin() as conn:
            conn.execute(CLAIMS.insert().values(key=key, holder=holder, at=time.time()))

    def holder_of() -> str | None:
        with engine.connect() as conn:
            return conn.execute(sa.select(CLAIMS.c.holder).where(CLAIMS.c.key == key)).scalar()

    def take_over() -> int:  # one UPDATE, so only one worker can win a stale claim
        with engine.begin() as conn:
            now = time.time()
            return conn.execute(
                CLAIMS.update()
                .where(CLAIMS.c.key == key, CLAIMS.c.at < now - stale_after)
                .values(holder=holder, at=now)
            ).rowcount

    try:
        call(insert)
        return True
    except sa.exc.IntegrityError:
        # an insert that landed just before the connection died is retried and meets itself
        if call(holder_of) == holder:
            return True
        if stale_after is None:
            return False
    return call(take_over) == 1


def once(storage, key: str, work, read, *, timeout: float = 600.0, what: str = "another worker"):
    """`work()` done by exactly one worker, its published result (`read()`) returned to every one. A
    worker that claimed the step and died is replaced after `timeout` seconds."""
    while True:
        if claim(storage, key, stale_after=timeout):
            return work()
        try:
            return wait_for(read, timeout=timeout, what=what)
        except WaitedTooLong:
            continue  # the holder is gone: try to take the step over


def wait_for(read, *, timeout: float = 600.0, every: float = 0.5, what: str = "another worker"):
    """Poll `read()` until it returns something other than None (what the claim's holder publishes)."""
    deadline = time.monotonic() + timeout
    while (value := read()) is None:
        if time.monotonic() > deadline:
            raise WaitedTooLong(f"waited {timeout:g} s for {what}")
        time.sleep(every)
    return value
