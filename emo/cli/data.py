"""`emo data`: generate, validate and split dataset folders (`emo data import` is in data_import.py)."""

from __future__ import annotations

import click

from emo.cli.options import data_options
from emo.core.config import SPLITS


@click.group("data")
def data() -> None:
    """Dataset folders: generate, import, validate, split."""


@data.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--kind",
    type=click.Choice(["sewa", "afew"]),
    default="sewa",
    show_default=True,
    help="SEWA-like (video + 4 audio tables, labels in [-1, 1]) or AFEW-VA-like (video only, [-10, 10]).",
)
@click.option(
    "--scale",
    type=click.Choice(["test", "demo", "sewa"]),
    default="test",
    show_default=True,
    help="Size preset: 'test' is small; 'demo' is the embedded default corpus; 'sewa' is SEWA's real "
    "size (for benchmarks).",
)
@click.option("--videos", type=click.IntRange(min=3), default=None, help="Number of videos (overrides the preset).")
@click.option("--duration", type=click.FloatRange(min=1.0), default=None, help="Seconds per video.")
@click.option("--dim", type=click.IntRange(min=1), default=None, help="Video embedding width.")
@click.option("--audio-dim", type=click.IntRange(min=1), default=None, help="Audio feature count.")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default=None, help="Table file format.")
@click.option("--seed", type=int, default=0, show_default=True)
def synth_cmd(out, kind, scale, videos, duration, dim, audio_dim, fmt, seed):
    """Write a synthetic dataset folder OUT in the real layout (meta.json says synthetic: true)."""
    from dataclasses import replace

    from emo.data.synth import SCALES, SynthConfig, synthesize

    config = replace(SynthConfig(kind=kind, seed=seed), **SCALES.get(scale, {}))
    overrides = {"videos": videos, "duration_s": duration, "dim": dim, "audio_dim": audio_dim, "fmt": fmt}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    folder = synthesize(out, config)
    click.echo(f"wrote synthetic {kind} dataset ({config.videos} videos × {config.duration_s:g} s) to {folder}")


@data.command("check")
@click.argument("data")
@data_options
@click.option("--window", type=float, multiple=True, help="Also count windows of this many seconds (repeatable).")
@click.option(
    "--per-video/--no-per-video",
    default=None,
    help="List every video's coverage (labelled, unlabelled frames, gaps, label range). "
    "[default: when there are at most 20]",
)
def check_cmd(data, window, per_video, **opts):
    """Validate dataset folder DATA and print a summary (videos, frames, fps, dims, labels, coverage, split)."""
    from emo.data.dataset import load_dataset
    from emo.data.summary import summarize

    ds = load_dataset(data, **opts)  # the --options of `data_options` are load_dataset's keywords
    click.echo(summarize(ds, windows_s=window, per_video=per_video))


@data.command("split")
@click.argument("data")
@data_options
@click.option(
    "--train-groups",
    metavar="NAME=VALUE[,VALUE...]",
    default=None,
    help="Cross-group protocol: train on the videos of these values of a meta.json group "
    "(e.g. culture=German,Hungarian); dev is carved from them. Needs --test-groups.",
)
@click.option(
    "--test-groups",
    metavar="NAME=VALUE[,VALUE...]",
    default=None,
    help="Cross-group protocol: test on the videos of these values of the same group (e.g. culture=Chinese).",
)
@click.option(
    "--dev-share",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.15,
    show_default=True,
    help="Cross-group protocol: the share of each training value's videos that becomes dev (drawn with --split-seed).",
)
def split_cmd(data, train_groups, test_groups, dev_share, **opts):
    """Make the train/dev/test split by video (split.json) if missing, and print it. With --train-groups and
    --test-groups, split by a meta.json group instead (videos of other values are excluded); an existing
    split.json that differs is refused, not replaced."""
    from emo.data.dataset import load_dataset

    if train_groups or test_groups:
        _split_by_group(data, train_groups, test_groups, dev_share, opts)
    ds = load_dataset(data, **opts)
    s = ds.split
    click.echo(f"split of {ds.folder} ({s.source}, seed {s.seed}, hash {s.hash}):")
    for name in SPLITS:
        ids = s.of(name)
        click.echo(f"  {name:5s} {len(ids):4d} videos  {', '.join(ids[:6])}{' …' if len(ids) > 6 else ''}")
    if s.cross_group:
        c = s.cross_group
        click.echo(
            f"  by group {c['group']}: train (and dev) {', '.join(c['train'])}; test {', '.join(c['test'])}; "
            f"{len(s.excluded)} video(s) of other values excluded"
        )


def _split_by_group(data: str, train_groups: str | None, test_groups: str | None, dev_share: float, opts: dict):
    """Write the cross-group split to DATA/split.json (kept if the same split is already there)."""
    from emo.core.errors import ConfigError
    from emo.data.dataset import load_dataset
    from emo.data.split import cross_group_split, parse_groups, place_split

    if not (train_groups and test_groups):
        raise ConfigError("the cross-group protocol needs both --train-groups and --test-groups.")
    ds = load_dataset(data, whole=True, **opts)  # the videos, without making a 70/15/15 split.json first
    if ds.video.split is not None:
        raise ConfigError(
            f"{ds.video.source} has a 'split' column, which is the dataset's split: drop the column to split by group."
        )
    split = cross_group_split(
        ds.video.video_ids,
        ds.groups,
        parse_groups(train_groups, "--train-groups"),
        parse_groups(test_groups, "--test-groups"),
        seed=opts["split_seed"],
        dev_share=dev_share,
        where=str(ds.folder / "meta.json"),
    )
    place_split(ds.folder, split)
