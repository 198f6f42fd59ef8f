"""Real media made by the tests: a face photograph that ships with scikit-image, moved, scaled and
brightened over a few seconds, encoded with PyAV into an mp4 with a voiced audio track."""

from __future__ import annotations

from pathlib import Path

import numpy as np

W, H, FPS, RATE = 480, 360, 25, 16000


def _face() -> np.ndarray:
    from skimage import data

    return data.astronaut()[0:300, 100:400]  # 300 × 300 around Eileen Collins' face


def _scaled(img: np.ndarray, scale: float) -> np.ndarray:
    n = int(round(img.shape[0] * scale))
    idx = np.minimum((np.arange(n) / scale).astype(int), img.shape[0] - 1)
    return img[idx][:, idx]


def frame_at(t: float, seconds: float, blank: tuple[float, float] | None) -> np.ndarray:
    """The face slides right, grows and brightens over `seconds`; blanked out inside `blank`."""
    canvas = np.full((H, W, 3), 90, np.uint8)
    if blank and blank[0] <= t < blank[1]:
        return canvas
    u = t / seconds
    face = _scaled(_face(), 0.95 + 0.15 * u)
    face = np.clip(face.astype(np.float32) * (0.85 + 0.3 * u), 0, 255).astype(np.uint8)
    x, y = int(10 + 130 * u), 20
    h, w = min(face.shape[0], H - y), min(face.shape[1], W - x)
    canvas[y : y + h, x : x + w] = face[:h, :w]
    return canvas


def voice(seconds: float) -> np.ndarray:
    """A harmonic tone: 140 Hz and quiet in the first half, 280 Hz and loud in the second."""
    t = np.arange(int(seconds * RATE)) / RATE
    second = t >= seconds / 2
    f0 = np.where(second, 280.0, 140.0)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (np.where(second, 0.5, 0.05) * tone / 2).astype(np.float32)


def face_video(
    path: Path, seconds: float = 4.0, blank: tuple[float, float] | None = (1.6, 2.0), audio: bool = True
) -> Path:
    """An mp4 (MPEG-4 video at 25 fps, AAC audio at 16 kHz) of the moving face and the voice."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"qscale": "3"}
        a_stream = out.add_stream("aac", rate=RATE, layout="mono") if audio else None
        for i in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(frame_at(i / FPS, seconds, blank), format="rgb24")
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if a_stream is not None:
            signal = voice(seconds)
            for lo in range(0, len(signal), 1024):
                chunk = signal[lo : lo + 1024][None]
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate, frame.pts = RATE, lo
                for packet in a_stream.encode(frame):
                    out.mux(packet)
            for packet in a_stream.encode():
                out.mux(packet)
    return path
