"""The `emo` command: thin click commands over the library. `main` is the group (`main.py`); the
`data import` formats (`data_import.py`) and `extract` (`extract.py`) are groups of their own, and
`mlproject.py` renders the MLproject file from the group it is handed."""

from emo.cli.main import main

__all__ = ["main"]
