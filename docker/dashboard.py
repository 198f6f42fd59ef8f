"""The Optuna dashboard as a WSGI app on the storage in OPTUNA_STORAGE, for gunicorn
(`gunicorn --pythonpath docker dashboard:app`). The dashboard's own command takes the storage URL as
an argument only, and a command line, password included, is visible to every user of the host."""

import os

import optuna_dashboard

app = optuna_dashboard.wsgi(os.environ["OPTUNA_STORAGE"])
