import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the `tables` helper module


def pytest_configure(config):
    logging.getLogger("emo").setLevel(logging.INFO)
