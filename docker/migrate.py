"""Bring MLflow's and Optuna's database schemas to the versions installed in this image.

Compose's one-shot `migrate` service runs it before the servers and workers start, so an image with a
newer MLflow or Optuna upgrades the databases instead of failing on them. Both URLs come from the
environment (MLFLOW_BACKEND_STORE_URI, OPTUNA_STORAGE), never a command line, which `ps` shows to
everyone on the host. Safe to run again: an up-to-date schema is left as it is.
"""

import os
import subprocess

import sqlalchemy
from mlflow.db import upgrade as mlflow_db_upgrade


def main() -> None:
    # `mlflow db upgrade URL` takes the URL as an argument only: run the command in this process
    # (it creates the tables of an empty database)
    mlflow_db_upgrade.main([os.environ["MLFLOW_BACKEND_STORE_URI"]], prog_name="mlflow db upgrade",
                           standalone_mode=False)

    url = os.environ["OPTUNA_STORAGE"]
    engine = sqlalchemy.create_engine(url)
    empty = not sqlalchemy.inspect(engine).has_table("version_info")
    engine.dispose()
    if empty:
        # `optuna storage upgrade` fails on an empty database; opening it creates the current schema
        import optuna

        optuna.storages.RDBStorage(url).engine.dispose()
        print("Optuna: created the tables", flush=True)
    else:
        subprocess.run(["optuna", "storage", "upgrade"], check=True)  # reads OPTUNA_STORAGE


if __name__ == "__main__":
    main()
