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


def postgres_url(
    *, user: str, password: str | None, host: str, database: str, port: int | str = 5432, driver: str = "psycopg"
) -> str:
    """A PostgreSQL URL from its parts, each percent-encoded.

    A password holding `@`, `#`, `/`, `:` or `%` pasted into `user:PASSWORD@host` as it is ends
    the user part early or starts a fragment: SQLAlchemy then connects as someone else, to another
    host, or not at all. `make_url` decodes what this encodes, so the password arrives unchanged.
    """
    from urllib.parse import quote

    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return f"postgresql+{driver}://{auth}@{host}:{int(port)}/{quote(database, safe='')}"


_MASK = "***"


def _secret_key(key: str) -> bool:
    # libpq reads `password` (and `sslpassword`) from the query as well as from the user part
    return "password" in key.lower()


def has_password(url: str) -> bool:
    """Whether `url` carries a password, in the user part or as a `password` query parameter."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return _mask_text(url) != url
    return bool(parsed.password) or any(_secret_key(k) for k in parsed.query)


def _mask_text(url: str) -> str:
    """The password of a URL SQLAlchemy cannot parse, hidden by pattern."""
    import re

    url = re.sub(r"(://[^:/?#@]*):[^@/?#]*@", rf"\1:{_MASK}@", url)
    return re.sub(r"((?:^|[?&;])[^=&;]*password[^=&;]*=)[^&;]*", rf"\1{_MASK}", url, flags=re.I)


def masked(url: str) -> str:
    """`url` for logs, params and messages: the password (user part and query) replaced by ***.

    SQLAlchemy parses the URL as the storage will, so a query holding `@` or an encoded password
    is neither garbled nor half shown.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a database URL SQLAlchemy reads: hide whatever looks like a secret
        return _mask_text(url)
    query = {k: (_MASK if _secret_key(k) else v) for k, v in parsed.query.items()}
    text = parsed.set(query=query).render_as_string(hide_password=True)
    return text.replace("=%2A%2A%2A", f"={_MASK}")
