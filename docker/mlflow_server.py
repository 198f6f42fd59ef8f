"""`mlflow server` for the compose stack: `python docker/mlflow_server.py [mlflow server options]`.

Puts the backend store's URL (MLFLOW_BACKEND_STORE_URI) into the environment, built from the
database variables (see stack.py), and with `--app-name basic-auth` first refuses to start without
an admin password of its own and a secret key, then writes MLflow's auth config (its users live in
the MLFLOW_AUTH_DB database) and points MLFLOW_AUTH_CONFIG_PATH at it. Then it becomes
`mlflow server OPTIONS`: no URL or password appears on the command line.
"""

import os
import sys

import stack


def auth_app(argv: list[str]) -> bool:
    """Whether the options ask for MLflow's basic-auth app."""
    for i, arg in enumerate(argv):
        if arg == "--app-name" and i + 1 < len(argv):
            return argv[i + 1] == "basic-auth"
        if arg.startswith("--app-name="):
            return arg.split("=", 1)[1] == "basic-auth"
    return False


def main(argv: list[str]) -> None:
    os.environ["MLFLOW_BACKEND_STORE_URI"] = stack.mlflow_db()
    if auth_app(argv):
        stack.check_auth_secrets()
        os.environ["MLFLOW_AUTH_CONFIG_PATH"] = stack.write_auth_config(stack.auth_db(), stack.default_permission())
    os.execvp("mlflow", ["mlflow", "server", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
