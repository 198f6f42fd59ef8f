"""`emo extract audio|video SRC OUT`: eGeMAPS functionals and face features from recordings, offline."""

from __future__ import annotations

import click

from emo.core.config import AUDIO_WINDOWS
from emo.data.align import GRID_FPS


@click.group("extract")
def extract() -> None:
    """From recordings to features, offline (needs: pip install -e '.[extract]')."""


def _floats(ctx, param, value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: write numbers separated by commas.") from None


def _report(outcomes, unit: str) -> None:
    done = [o for o in outcomes if not o.skipped]
    skipped = len(outcomes) - len(done)
    media = sum(o.media_seconds for o in done)
    busy = sum(o.seconds for o in done)
    click.echo(
        f"{len(done)} recording(s) extracted ({sum(o.rows for o in done)} {unit}, {media:.1f} s of media, "
        f"{busy:.1f} s of work: {media / busy if busy else 0:.1f}× real time per process)"
        + (f"; {skipped} already complete, skipped" if skipped else "")
    )


@extract.command("audio")
@click.argument("src", type=click.Path(exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--windows",
    default=",".join(map(str, AUDIO_WINDOWS)),
    show_default=True,
    callback=_floats,
    help="Window lengths in seconds, one audio_{N}s table each.",
)
@click.option(
    "--hop",
    type=click.FloatRange(min=0, min_open=True),
    default=0.2,
    show_default=True,
    help="Seconds between window starts.",
)
@click.option(
    "--feature-set",
    type=click.Choice(["egemaps", "compare"]),
    default="egemaps",
    show_default=True,
    help="openSMILE functionals: eGeMAPSv02 (88) or ComParE 2016 (6373).",
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: the cores].")
def extract_audio(src, out, windows, hop, feature_set, jobs):
    """eGeMAPS functionals of SRC (a media file or folder) into OUT/audio_{N}s.parquet."""
    from emo.extract.audio import audio_job, audio_options
    from emo.extract.batch import run_folder

    if not windows or any(w not in AUDIO_WINDOWS for w in windows):
        raise click.BadParameter(
            "audio tables are audio_1s … audio_4s: --windows takes 1, 2, 3 and/or 4.", param_hint="--windows"
        )
    ws = tuple(int(w) for w in windows)
    args = {"windows": ws, "hop": hop, "feature_set": feature_set}
    outcomes = run_folder(src, out, audio_job, audio_options(**args), jobs=jobs, what="extract audio", args=args)
    _report(outcomes, "windows")


@extract.command("video")
@click.argument("src", type=click.Path(exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--fps",
    type=click.FloatRange(min=0, min_open=True),
    default=GRID_FPS,
    show_default=True,
    help="Frames per second to decode (times from the container).",
)
@click.option(
    "--extractor",
    default="landmarks",
    show_default=True,
    help="landmarks (68 dlib points, normalised, + face box), embedding (dlib 128-d) or "
    "torchscript:PATH (your own model on face crops).",
)
@click.option(
    "--crop-size",
    type=click.IntRange(min=8),
    default=112,
    show_default=True,
    help="torchscript: the side the face crop is resized to.",
)
@click.option(
    "--mean",
    default="0.5,0.5,0.5",
    show_default=True,
    callback=_floats,
    help="torchscript: per-channel mean subtracted from pixels in [0, 1].",
)
@click.option(
    "--std",
    default="0.5,0.5,0.5",
    show_default=True,
    callback=_floats,
    help="torchscript: per-channel standard deviation the pixels are divided by.",
)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Worker processes [default: the cores].")
def extract_video(src, out, fps, extractor, crop_size, mean, std, jobs):
    """Face features of the largest face per frame of SRC into OUT/video.parquet (frames without a face are
    left out)."""
    from emo.extract.batch import run_folder
    from emo.extract.faces import make_extractor, video_job, video_options

    if len(mean) != 3 or len(std) != 3 or not all(v > 0 for v in std):
        raise click.BadParameter("--mean and --std take three numbers (R, G, B); std above 0.")
    made_by = make_extractor(extractor, crop_size=crop_size, mean=mean, std=std)  # a bad model fails here, once
    outcomes = run_folder(
        src,
        out,
        video_job,
        video_options(fps, made_by),
        jobs=jobs,
        what="extract video",
        args={"fps": fps, "extractor": extractor, "crop_size": crop_size, "mean": mean, "std": std},
    )
    _report(outcomes, "frames with a face")
