"""Every error emo raises for a person to read: one paragraph that says what is wrong, where, and what
to do. The CLI prints an EmoError without a traceback (exit code 2). A user's input or options are a
DataError or a ConfigError; the other classes are states met at run time."""


class EmoError(Exception):
    """An error a person can act on; the CLI prints it without a traceback."""


class DataError(EmoError):
    """A dataset violates the data contract (docs: data-contract)."""


class ConfigError(EmoError):
    """An option or parameter is invalid."""


class TrackingError(EmoError):
    """The tracking server or store cannot be reached or refused a request."""


class CheckpointError(EmoError):
    """A checkpoint holds more than tensors and plain values, so it was not loaded."""


class StorageUnavailableError(EmoError):
    """The Optuna storage stayed unreachable for longer than a worker waits for it."""


class WaitedTooLong(EmoError):
    """The worker holding a claim never published its result (it died after claiming)."""


class StudyError(EmoError):
    """A shared study or matrix cannot go on: its cells failed, or its first worker died while making it."""


class SomeFailed(EmoError):
    """Some recordings could not be processed; the others were."""


def short_error(exc: BaseException) -> str:
    """An exception in one line, for messages and a failed run's `failure_reason`: its type and first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]


def exception_chain(exc: BaseException | None):
    """`exc` and the exceptions it was raised from or while handling, outermost first: a driver's or an
    HTTP client's error is the cause of the one MLflow, SQLAlchemy or Optuna raise."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
