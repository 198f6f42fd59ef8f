"""The Optuna dashboard as a WSGI app for gunicorn (`gunicorn --pythonpath docker dashboard:app`), on
the stack's `optuna` database. The dashboard's own command takes the storage URL as an argument only,
and a command line, password included, is visible to every user of the host; the URL is built from
the database variables instead (see stack.py)."""

import optuna_dashboard
import stack

app = optuna_dashboard.wsgi(stack.optuna_db())
