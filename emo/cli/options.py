"""The options commands share: a dataset folder's, every `Config` setting's (typed, with its default shown), and
the study commands'."""

from __future__ import annotations

import click

from emo.core.config import HEARTBEAT_SECONDS


def data_options(f):
    """Options every command that reads a dataset folder shares."""
    f = click.option("--fps", type=float, default=None, help="Frame rate, when meta.json has none.")(f)
    f = click.option(
        "--label-scale",
        type=float,
        default=None,
        help="Labels lie in [-S, S] (SEWA 1, AFEW-VA 10); default: meta.json, else 1.",
    )(f)
    f = click.option(
        "--id-pattern",
        default=None,
        help="Regex with a named group 'id' deriving the video id from the video table's 'path'.",
    )(f)
    f = click.option(
        "--audio-id-pattern",
        default=None,
        help="Regex with a named group 'id' deriving the video id from an audio table's 'filename'.",
    )(f)
    f = click.option(
        "--split-seed",
        type=int,
        default=0,
        show_default=True,
        help="Seed of the video split, used only when the dataset has no split yet.",
    )(f)
    return f


class AutoOr(click.ParamType):
    """A number, string or choice that also takes "auto": the default decided by the data or the model."""

    def __init__(self, kind: type, choices: tuple[str, ...] | None = None) -> None:
        self.kind, self.choices = kind, choices
        self.name = kind.__name__ if choices is None else "choice"

    def get_metavar(self, param, ctx=None) -> str | None:
        return f"[{'|'.join(self.choices)}]" if self.choices else None

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        if self.choices is not None and str(value) not in self.choices:
            self.fail(f"{value!r} is not one of {', '.join(self.choices)}", param, ctx)
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a valid {self.name} (or 'auto')", param, ctx)


def _shown_default(name: str, families: tuple[str, ...]) -> str:
    """A setting's default as --help shows it: one value, or one per model that takes it."""
    from emo.core.config import FAMILIES, METHODS, MODEL_KEYS, Config

    configs = [
        (f"fusion {m}", Config(family=f, method=m)) if f == "fusion" else (f, Config(family=f))
        for f in families
        if f in FAMILIES
        for m in (METHODS if f == "fusion" else (None,))
    ]
    if name not in MODEL_KEYS:  # not a model's: the family's own default (Fusion 4 for fusion)
        configs = [(f, Config(family=f)) for f in families if f in FAMILIES]
    values: dict[str, list[str]] = {}
    for label, config in configs:
        params = config.params()
        if name in params:
            values.setdefault(params[name], []).append(label)
    if len(values) == 1 and sum(map(len, values.values())) == len(configs):
        return next(iter(values))
    return "; ".join(f"{value} ({', '.join(labels)})" for value, labels in values.items())


def config_options(*families: str):
    """One --option per setting of `families` (default: every family), typed from `Config`, closed lists
    as choices; unset options keep Config's defaults."""
    import dataclasses
    import typing

    from emo.core.config import CHOICES, FAMILIES, HELP, Config, family_settings

    families = families or tuple(FAMILIES)
    names = {n for family in families for n in family_settings(family)}
    hints = typing.get_type_hints(Config)

    def decorate(f):
        for field in reversed(dataclasses.fields(Config)):
            if field.name not in names:
                continue
            hint = hints[field.name]
            base = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
            kind = AutoOr({int: int, float: float}.get(base, str), CHOICES.get(field.name))
            f = click.option(
                f"--{field.name.replace('_', '-')}",
                field.name,
                type=kind,
                default=None,
                help=f"{HELP.get(field.name, '')} [default: {_shown_default(field.name, families)}]",
            )(f)
        return f

    return decorate


def config_from(family: str, options: dict):
    from emo.core.config import Config

    values = {k: v for k, v in options.items() if v is not None}
    if "algorithms" in values:
        values["algorithms"] = tuple(a.strip() for a in values["algorithms"].split(",") if a.strip())
    return Config(family=family, **values).validate()


# options every study command (tune, reproduce) takes
experiment_option = click.option(
    "--experiment", type=AutoOr(str), default=None, help="MLflow experiment name (ignored under `mlflow run`)."
)
heartbeat_option = click.option(
    "--heartbeat",
    type=click.IntRange(min=1),
    default=HEARTBEAT_SECONDS,
    show_default=True,
    help="Seconds between a worker's heartbeats; a worker silent for 3 is taken for dead.",
)
