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


def declared(args: list[str]) -> list[str]:
    """The parameters of the MLproject entry point whose command `args` are (MLflow appends the
    undeclared ones at the end)."""
    from emo.cli.mlproject import entry_points

    for entry in entry_points(main).values():
        words = entry["command"].split()[2:]  # after `python entrypoints/run.py`
        fixed = next((i for i, w in enumerate(words) if w.startswith("{")), len(words) + 1) - 1
        if args[:fixed] == words[:fixed]:
            return sorted(entry["parameters"])
    return []


def unknown_parameter(exc: click.NoSuchOption, args: list[str]) -> str:
    """What `-P name=…` with an unknown name gets: the closest parameter of the entry point, and the
    list of them."""
    import difflib

    known = declared(args)
    name = parameter(exc.option_name).removeprefix("-P ")
    close = difflib.get_close_matches(name, known, n=1)
    guess = f" Did you mean -P {close[0]}?" if close else ""
    listed = f" Its parameters: {', '.join(known)}." if known else " The MLproject file lists them."
    return f"-P {name} is not a parameter of this entry point.{guess}{listed}"


def run(args: list[str]) -> int:
    try:
        return main.main(args, prog_name="emo", standalone_mode=False) or 0
    except click.NoSuchOption as exc:
        message = unknown_parameter(exc, args)
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
