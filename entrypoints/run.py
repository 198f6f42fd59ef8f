"""The MLproject's one entry script: `python entrypoints/run.py COMMAND [ARGS]` is `emo COMMAND [ARGS]`,
runnable from a checkout without installing emo.

Its options come from `-P name=value` parameters, so a usage error names the parameter as the user
wrote it (`-P epochs=abc`), not the option MLflow passed on (`--epochs`).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click  # noqa: E402

from emo.cli import main  # noqa: E402


def parameter(option: str) -> str:
    """`--batch-size` -> `-P batch_size`."""
    return f"-P {option.lstrip('-').replace('-', '_')}"


def run(args: list[str]) -> int:
    try:
        return main.main(args, prog_name="emo", standalone_mode=False) or 0
    except click.NoSuchOption as exc:
        message = f"{parameter(exc.option_name)} is not a parameter of this entry point; the MLproject file lists them."
    except click.BadParameter as exc:
        name = parameter(exc.param.opts[0]) if exc.param is not None else "a parameter"
        message = f"{name}: {exc.message}"
    except click.UsageError as exc:
        message = exc.message
    except click.Abort:
        return 1
    click.echo(f"error: {message}", err=True)
    return 2


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
