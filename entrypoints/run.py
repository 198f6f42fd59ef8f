"""The MLproject's one entry script: `python entrypoints/run.py COMMAND [ARGS]` is `emo COMMAND [ARGS]`,
runnable from a checkout without installing emo."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emo.cli import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:], prog_name="emo")
