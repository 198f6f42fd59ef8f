"""Decoding media with PyAV (its wheels ship their own FFmpeg: no system ffmpeg needed).

Audio comes out as 16 kHz mono float32, the rate eGeMAPS is defined on; video frames come out at
a chosen rate with the *container's* timestamps (pts × time base), never assumed from a frame count.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from emo.core.errors import DataError

AUDIO_RATE = 16000
MEDIA_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".mp4", ".avi", ".mkv", ".webm", ".mov")


def _open(path: Path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"{path}: cannot be decoded ({type(exc).__name__}: {exc}).") from None


def decode_audio(path: str | Path, rate: int = AUDIO_RATE) -> np.ndarray:
    """The first audio stream of `path`, resampled to `rate` Hz mono float32 in [-1, 1]."""
    import av

    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise DataError(f"{path}: has no audio stream.")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):  # flush
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise DataError(f"{path}: the audio stream cannot be decoded ({exc}).") from None
    if not chunks:
        raise DataError(f"{path}: the audio stream holds no samples.")
    return np.concatenate(chunks).astype(np.float32)


def decode_frames(path: str | Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB uint8 frame) at about `fps`: for each step k/fps, the first frame whose
    container timestamp is at or after it. Times are the frames' own presentation times."""
    import av

    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise DataError(f"{path}: has no video stream.")
        stream = container.streams.video[0]
        next_step = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if t + 1e-6 < next_step / fps:
                    continue
                next_step = int(np.floor(t * fps + 1e-6)) + 1
                # a copy of its own: PyAV 18 hands out a view of a buffer its decoder goes on using
                yield t, np.array(frame.to_ndarray(format="rgb24"), order="C")
        except av.error.FFmpegError as exc:
            raise DataError(f"{path}: the video stream cannot be decoded ({exc}).") from None


def media_files(src: str | Path) -> list[Path]:
    """One media file, or the media files of a folder (sorted, not recursive)."""
    src = Path(src)
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise DataError(f"{src}: no such file or folder of recordings.")
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
    if not files:
        raise DataError(f"{src}: no media files ({', '.join(MEDIA_SUFFIXES)}).")
    return files
