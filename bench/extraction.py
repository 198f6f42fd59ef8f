"""Benchmark: `emo extract` speed on this CPU, 1 and 2 worker processes.

    python bench/extraction.py                  # 4 recordings × 30 s (face video 480×360 at 25 fps, voice)
    python bench/extraction.py --seconds 10     # quicker

Prints, for video, frames per second processed (decoded at 5 fps, the largest face found and its 68
landmarks computed) and, for audio, the real-time factor of eGeMAPS functionals over 1-4 s windows
every 0.2 s (seconds of work per second of audio). The media are made here, as the tests make them.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' media generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from emo.extract.audio import audio_job, audio_options
    from emo.extract.batch import run_folder
    from emo.extract.faces import make_extractor, video_job, video_options

    from media import face_video

    root = Path(tempfile.mkdtemp(prefix="emo-extract-bench-"))
    try:
        for k in range(args.recordings):
            face_video(root / "media" / f"rec{k}.mp4", seconds=args.seconds, blank=None)
        media = args.recordings * args.seconds
        for jobs in (1, 2):
            t0 = time.perf_counter()
            video = {"fps": 5.0, "extractor": "landmarks"}
            out = run_folder(
                root / "media",
                root / f"v{jobs}",
                video_job,
                video_options(video["fps"], make_extractor(video["extractor"])),
                jobs=jobs,
                what="video",
                args=video,
            )
            dt = time.perf_counter() - t0
            frames = sum(o.rows for o in out)
            print(
                f"video, {jobs} job(s): {frames} frames with a face of {int(media * 5)} in {dt:.1f} s: "
                f"{frames / dt:.1f} frames/s"
            )
            t0 = time.perf_counter()
            audio = {"windows": (1, 2, 3, 4), "hop": 0.2, "feature_set": "egemaps"}
            run_folder(
                root / "media",
                root / f"a{jobs}",
                audio_job,
                audio_options(**audio),
                jobs=jobs,
                what="audio",
                args=audio,
            )
            dt = time.perf_counter() - t0
            print(
                f"audio, {jobs} job(s): {media:.0f} s of audio, 4 window lengths, in {dt:.1f} s: real-time factor "
                f"{dt / media:.3f} ({media / dt:.0f}× faster than real time)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
