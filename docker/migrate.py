"""Prepare the stack's databases for the versions installed in this image, and refuse weak secrets.

Compose's one-shot `migrate` service runs it before the servers and workers start, so an image with a
newer MLflow or Optuna upgrades the databases instead of failing on them, and a stack whose admin
password is missing or MLflow's old default stops here, with one line, before anything is served.
The URLs are built from the database variables (see stack.py), never taken from a command line,
which `ps` shows to everyone on the host. Safe to run again: what is up to date is left as it is.

Steps: the `optuna` and `mlflow_auth` databases created when missing (the `mlflow` one is the
PostgreSQL image's own); MLflow's, Optuna's and MLflow auth's schemas created or upgraded; the
workers' MLflow account (MLFLOW_TRACKING_USERNAME) created, or its password set to
MLFLOW_TRACKING_PASSWORD. The admin account is created by the MLflow server on its first start.
"""

import os
import subprocess

import sqlalchemy
import stack


def create_databases(server_url: str, names: list[str]) -> None:
    """CREATE DATABASE for each of `names` that does not exist yet (the volume may predate it)."""
    engine = sqlalchemy.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name in names:
                if not conn.execute(
                    sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first():
                    conn.execute(sqlalchemy.text(f"CREATE DATABASE {engine.dialect.identifier_preparer.quote(name)}"))
                    print(f"created the database {name}", flush=True)
    finally:
        engine.dispose()


def migrate_optuna(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    empty = not sqlalchemy.inspect(engine).has_table("version_info")
    engine.dispose()
    if empty:
        # `optuna storage upgrade` fails on an empty database; opening it creates the current schema
        import optuna

        optuna.storages.RDBStorage(url).engine.dispose()
        print("Optuna: created the tables", flush=True)
    else:
        # the command takes the URL from OPTUNA_STORAGE, which only this child process sees
        subprocess.run(["optuna", "storage", "upgrade"], check=True, env={**os.environ, "OPTUNA_STORAGE": url})


def migrate_auth(url: str, admin: str, worker: str, password: str) -> None:
    """MLflow auth's tables, and the workers' account with `password`."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(url)  # creates or upgrades the tables
    try:
        if worker == admin:
            print(f"MLflow auth: the workers sign in as the admin account {admin}", flush=True)
        elif not store.has_user(worker):
            store.create_user(worker, password)
            print(f"MLflow auth: created the account {worker}", flush=True)
        elif not store.authenticate_user(worker, password):
            store.update_user(worker, password=password)
            print(f"MLflow auth: set a new password for the account {worker}", flush=True)
    finally:
        store.engine.dispose()


def main() -> None:
    # the secrets first: a stack that would serve with a known password does not start at all
    stack.check_auth_secrets()
    worker_password = stack.check_password("MLFLOW_TRACKING_PASSWORD")
    admin = os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"
    worker = os.environ.get("MLFLOW_TRACKING_USERNAME") or admin
    mlflow_url, optuna_url, auth_url = stack.mlflow_db(), stack.optuna_db(), stack.auth_db()

    create_databases(mlflow_url, [sqlalchemy.engine.make_url(u).database for u in (optuna_url, auth_url)])
    # `mlflow db upgrade URL` takes the URL as an argument only: run the command in this process
    # (it creates the tables of an empty database)
    from mlflow.db import upgrade as mlflow_db_upgrade

    mlflow_db_upgrade.main([mlflow_url], prog_name="mlflow db upgrade", standalone_mode=False)
    migrate_optuna(optuna_url)
    migrate_auth(auth_url, admin, worker, worker_password)


if __name__ == "__main__":
    main()
