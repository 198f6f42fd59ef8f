"""User-facing errors: one paragraph that says what is wrong, where, and what to do."""


class EmoError(Exception):
    """An error caused by the user's input or options; the CLI prints it without a traceback."""


class DataError(EmoError):
    """A dataset violates the data contract (docs: data-contract)."""


class ConfigError(EmoError):
    """An option or parameter is invalid."""
