"""Database URLs in the form SQLAlchemy (under Optuna and MLflow) needs to find emo's driver."""


def sqlalchemy_url(url: str) -> str:
    """`postgresql://…` and `postgres://…` as `postgresql+psycopg://…`; anything else unchanged.

    emo installs psycopg (version 3) only. For a bare `postgresql://` SQLAlchemy picks the driver
    itself: psycopg2 up to 2.0 ("No module named 'psycopg2'"), psycopg from 2.1; `postgres://` it
    does not know at all. Naming the driver makes a URL work whichever SQLAlchemy is installed. A URL
    that names its driver (`postgresql+psycopg2://`) is the user's choice and kept.
    """
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url
