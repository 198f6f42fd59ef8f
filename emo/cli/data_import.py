"""`emo data import FORMAT DEST`: corpora as distributed, and plain label tables, into dataset folders."""

from __future__ import annotations

import click

from emo.core.config import AUDIO_WINDOWS
from emo.data.align import GRID_FPS


def _audio_specs(ctx, param, values) -> dict[int, str]:
    """`--audio DIR:SECONDS` (repeatable) -> {seconds: DIR}."""
    out = {}
    for value in values:
        folder, sep, seconds = value.rpartition(":")
        if not sep or not folder or seconds not in {str(w) for w in AUDIO_WINDOWS}:
            raise click.BadParameter(
                f"{value!r}: write DIR:SECONDS, SECONDS being the audio window of that folder's "
                f"features (1, 2, 3 or 4; e.g. egemaps:4 for functionals over 4 s -> audio_4s)."
            )
        if int(seconds) in out:
            raise click.BadParameter(f"two folders for audio_{seconds}s ({out[int(seconds)]} and {folder}).")
        out[int(seconds)] = folder
    return out


def import_options(default_scale: float):
    """Options every `emo data import FORMAT` shares."""

    def wrap(f):
        f = click.argument("dest", type=click.Path(file_okay=False))(f)
        f = click.option(
            "--fps",
            type=click.FloatRange(min=0, min_open=True),
            default=GRID_FPS,
            show_default=True,
            help="The grid labels and features meet on (the thesis: 5).",
        )(f)
        f = click.option(
            "--label-scale",
            type=click.FloatRange(min=0, min_open=True),
            default=default_scale,
            show_default=True,
            help="Labels lie in [-S, S]; written to meta.json.",
        )(f)
        f = click.option(
            "--format",
            "fmt",
            type=click.Choice(["parquet", "csv"]),
            default="parquet",
            show_default=True,
            help="Table file format.",
        )(f)
        f = click.option(
            "--seed",
            type=int,
            default=0,
            show_default=True,
            help="Seed of the dev set carved from training, when the official test has no labels.",
        )(f)
        f = click.option("--force", is_flag=True, help="Replace DEST if it exists.")(f)
        return f

    return wrap


def _sources(options: dict) -> list[tuple[str, str]]:
    """The (option, path) inputs among a command's options: its click.Path options give text, `--audio`
    a {seconds: folder} dict; numbers (--source-fps, --tolerance) are not paths."""
    out = []
    for key, value in options.items():
        for path in value.values() if isinstance(value, dict) else [value]:
            if isinstance(path, str):
                out.append((f"--{key.replace('_', '-')}", path))
    return out


def _run_import(fmt_name: str, recordings, common: dict, options: dict) -> None:
    """Write `recordings` as a dataset folder: `common` holds the options of `import_options` (dest,
    fps, label_scale, fmt, seed, force), `options` the format's own (logged in meta.json)."""
    from emo.data.importer import write_dataset

    summary = write_dataset(
        recordings,
        common["dest"],
        fps=common["fps"],
        label_scale=common["label_scale"],
        source_format=fmt_name,
        options={k: str(v) for k, v in options.items() if v not in (None, {}, ())},
        force=common["force"],
        fmt=common["fmt"],
        seed=common["seed"],
        sources=_sources(options),
    )
    click.echo(str(summary))


@click.group("import")
def import_group() -> None:
    """Import a corpus as distributed into a dataset folder DEST (see the README, "Your own corpus")."""


_audio_option = click.option(
    "--audio",
    "audio",
    multiple=True,
    callback=_audio_specs,
    metavar="DIR:SECONDS",
    help="Audio feature folder and its window length in seconds (-> audio_{N}s); repeatable.",
)


@import_group.command("avec")
@click.option(
    "--labels",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of <Partition>_<Culture>_<NN>.csv label files (name;timestamp;arousal;valence[;liking]).",
)
@click.option(
    "--video",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of per-recording video feature files (name;timestamp;features; header optional).",
)
@_audio_option
@import_options(1.0)
def import_avec(labels, video, audio, **common):
    """SEWA as shipped for AVEC 2017-2019 (CES)."""
    from emo.data.corpora import avec

    _run_import(
        "avec",
        avec(labels, video, audio),
        common,
        {"labels": labels, "video": video, "audio": audio},
    )


@import_group.command("afew-va")
@click.option(
    "--clips",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder holding the clip folders (<clip>/<clip>.json, at any depth).",
)
@click.option(
    "--video",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Per-frame embeddings: a table of video_id (the clip), frame (numbered like the clip's JSON "
    "keys) and emb_*; default: the normalised landmarks.",
)
@click.option(
    "--source-fps",
    type=click.FloatRange(min=0, min_open=True),
    default=25.0,
    show_default=True,
    help="Frame rate of the clips (frame numbers / this = seconds).",
)
@import_options(10.0)
def import_afew(clips, video, source_fps, **common):
    """AFEW-VA clips: per-frame valence/arousal in -10..10 and 68 landmarks."""
    from emo.data.corpora import afew_va

    _run_import(
        "afew-va",
        afew_va(clips, video=video, source_fps=source_fps),
        common,
        {"clips": clips, "video": video, "source_fps": source_fps},
    )


@import_group.command("affwild2")
@click.option(
    "--annotations",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder holding VA_Set/ or VA_Estimation_Challenge/ (or their Train/Validation sets).",
)
@click.option(
    "--video",
    required=True,
    type=click.Path(exists=True),
    help="Per-frame embeddings: a table (video_id, frame counted from 0 like the annotation lines, "
    "emb_*) or a folder of per-video feature files (timestamp or frameTime in seconds).",
)
@click.option(
    "--source-fps",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The videos' frame rate; default: from each name (<id>-<fps>-<W>x<H>).",
)
@click.option(
    "--tolerance",
    type=click.IntRange(min=0),
    default=None,
    help="Frames by which annotations and features may differ in length [default: max(10, 2%)].",
)
@import_options(1.0)
def import_affwild2(annotations, video, source_fps, tolerance, **common):
    """Aff-Wild2 (ABAW) valence-arousal annotations; -5 marks an unlabelled frame."""
    from emo.data.corpora import affwild2

    _run_import(
        "affwild2",
        affwild2(annotations, video, source_fps=source_fps, tolerance=tolerance),
        common,
        {"annotations": annotations, "video": video, "source_fps": source_fps, "tolerance": tolerance},
    )


@import_group.command("muse")
@click.option(
    "--labels",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder with arousal/ and valence/ label folders (challenge, fused or raw annotator files).",
)
@click.option(
    "--video",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of per-video feature files (timestamp in ms[, segment_id], features).",
)
@_audio_option
@click.option(
    "--partition",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="partition.csv (Id,Partition, any case).",
)
@import_options(1.0)
def import_muse(labels, video, audio, partition, **common):
    """MuSe (MuSe-CaR and later) continuous labels."""
    from emo.data.corpora import muse

    _run_import(
        "muse",
        muse(labels, video, audio=audio, partition=partition),
        common,
        {"labels": labels, "video": video, "audio": audio, "partition": partition},
    )


@import_group.command("recola")
@click.option(
    "--labels",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder with arousal/ and valence/ gold-standard ARFF files (train_1, dev_1, …).",
)
@click.option(
    "--video",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder of per-recording video feature files (ARFF or CSV, frameTime in s).",
)
@_audio_option
@import_options(1.0)
def import_recola(labels, video, audio, **common):
    """RECOLA as shipped for AVEC 2016 (25 Hz gold standards)."""
    from emo.data.corpora import recola

    _run_import(
        "recola",
        recola(labels, video, audio=audio),
        common,
        {"labels": labels, "video": video, "audio": audio},
    )


@import_group.command("csv")
@click.option(
    "--labels",
    required=True,
    type=click.Path(exists=True),
    help="A label table (video_id, timestamp in s, valence, arousal) or a folder of one per video "
    "(named <video_id>.csv: timestamp, valence, arousal).",
)
@click.option(
    "--video",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The video feature table (video_id, timestamp in s, emb_*), e.g. from `emo extract video`.",
)
@click.option(
    "--audio",
    "audio",
    multiple=True,
    callback=_audio_specs,
    metavar="TABLE:SECONDS",
    help="An audio feature table and its window in seconds, e.g. OUT/audio_4s.parquet:4 (repeatable).",
)
@import_options(1.0)
def import_csv(labels, video, audio, **common):
    """Plain label tables joined with feature tables (your own recordings after `emo extract`)."""
    from emo.data.corpora import plain_tables

    _run_import(
        "csv",
        plain_tables(labels, video, audio=audio),
        common,
        {"labels": labels, "video": video, "audio": audio},
    )
