"""MLproject entry point: `python entrypoints/tune.py [OPTIONS]` is `emo tune`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from emo.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["tune", *sys.argv[1:]], prog_name="entrypoints/tune.py")
