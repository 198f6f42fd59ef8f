"""What every service of the compose stack reads from its environment: the database URLs, built here
from separate variables, and the checks on the stack's secrets.

Compose could paste ${POSTGRES_PASSWORD} into a URL, but it cannot percent-encode it: a password
holding `@`, `#`, `/`, `:` or `%` would then end the user part early or start a fragment, and the
service would connect to the wrong place or not at all. So compose passes the parts and these
scripts build the URLs (emo.dburl.postgres_url), in the environment of the process that needs them,
never on a command line, which `ps` shows to every user of the host.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile

from emo.dburl import postgres_url

# the admin password MLflow's basic_auth.ini shipped until 3.x: publicly known, never acceptable
OLD_DEFAULT_ADMIN_PASSWORD = "password1234"
MIN_PASSWORD = 12  # MLflow refuses shorter account passwords


def fail(message: str) -> None:
    """Stop the service with one line on stderr (compose shows it in `docker compose logs`)."""
    sys.exit(f"error: {message}")


def database_url(database_variable: str, default: str) -> str:
    """The URL of one database of the stack's PostgreSQL, from POSTGRES_USER, POSTGRES_PASSWORD,
    POSTGRES_HOST, POSTGRES_PORT and the database named by `database_variable`."""
    password = os.environ.get("POSTGRES_PASSWORD", "")
    if not password:
        fail("POSTGRES_PASSWORD is not set: set it in .env (see .env.example).")
    return postgres_url(
        user=os.environ.get("POSTGRES_USER") or "emo",
        password=password,
        host=os.environ.get("POSTGRES_HOST") or "postgres",
        port=os.environ.get("POSTGRES_PORT") or 5432,
        database=os.environ.get(database_variable) or default,
    )


def mlflow_db() -> str:
    return database_url("MLFLOW_DB", "mlflow")


def optuna_db() -> str:
    return database_url("OPTUNA_DB", "optuna")


def auth_db() -> str:
    return database_url("MLFLOW_AUTH_DB", "mlflow_auth")


def check_password(variable: str) -> str:
    """The value of `variable`, an account password, if it is one to keep: set, not MLflow's old
    default, and as long as MLflow requires."""
    value = os.environ.get(variable, "")
    if not value:
        fail(f"{variable} is not set: set a password of your own in .env (see .env.example).")
    if value == OLD_DEFAULT_ADMIN_PASSWORD:
        fail(
            f"{variable} is {OLD_DEFAULT_ADMIN_PASSWORD!r}, the default password that older MLflow releases "
            f"shipped and that everyone knows: set a password of your own in .env."
        )
    if len(value) < MIN_PASSWORD:
        fail(f"{variable} is shorter than {MIN_PASSWORD} characters, which MLflow refuses: set a longer one in .env.")
    return value


def check_auth_secrets() -> None:
    """The basic-auth server's secrets: the admin password and the key that signs its forms."""
    check_password("MLFLOW_AUTH_ADMIN_PASSWORD")
    if not os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        fail(
            "MLFLOW_FLASK_SERVER_SECRET_KEY is not set: set a long random string in .env "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
        )


PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")


def default_permission() -> str:
    """What every account may do with experiments and models it was not given rights to:
    MLFLOW_AUTH_DEFAULT_PERMISSION, EDIT unless set (workers of one study log to each other's runs)."""
    value = (os.environ.get("MLFLOW_AUTH_DEFAULT_PERMISSION") or "EDIT").strip().upper()
    if value not in PERMISSIONS:
        fail(f"MLFLOW_AUTH_DEFAULT_PERMISSION={value!r}: choose one of {', '.join(PERMISSIONS)}.")
    return value


def write_auth_config(database_uri: str, default_permission: str) -> str:
    """MLflow's basic-auth ini (MLFLOW_AUTH_CONFIG_PATH), readable by this user only: its database
    URL holds the password. The admin account's name and password stay in the environment
    (MLFLOW_AUTH_ADMIN_USERNAME, MLFLOW_AUTH_ADMIN_PASSWORD), which MLflow reads before the file."""
    folder = tempfile.mkdtemp(prefix="mlflow-auth-")
    path = os.path.join(folder, "basic_auth.ini")
    # configparser, which reads the file, takes `%` for interpolation: an encoded password has them
    text = (
        f"[mlflow]\ndefault_permission = {default_permission}\n"
        f"database_uri = {database_uri.replace('%', '%%')}\n"
        f"admin_username = {os.environ.get('MLFLOW_AUTH_ADMIN_USERNAME') or 'admin'}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
