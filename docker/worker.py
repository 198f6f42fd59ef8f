"""`emo` for the compose stack's tuning workers: `python docker/worker.py tune [OPTIONS]`.

`emo tune` reads its storage URL from EMO_STORAGE when --storage is not given; this puts the
stack's `optuna` database there, built from the database variables (see stack.py), so that the
password reaches emo through the environment only. The workers sign in to the MLflow server with
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, which MLflow's client reads itself.
"""

import os
import sys

import stack

if __name__ == "__main__":
    os.environ["EMO_STORAGE"] = stack.optuna_db()
    from emo.cli import main

    main(sys.argv[1:], prog_name="emo")
