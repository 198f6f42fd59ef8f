"""Per-frame face features from the largest face in each frame, on the CPU, with models that ship in
packages (nothing is downloaded at run time).

- `landmarks` (default): dlib's 68-point shape predictor (the scheme AFEW-VA's landmarks use) on the
  face found by dlib's HOG detector; 136 shape features, centred and scaled to unit RMS radius
  (`emo.data.corpora.normalise_landmarks`: the expression and pose remain, not where the face is),
  plus 4 box features (centre x / width, centre y / height, face width / width, face height /
  height) so head movement stays visible.
- `embedding`: dlib's face-recognition ResNet, 128-d (made to ignore expression: a weaker choice for
  affect, offered for comparison).
- `torchscript:PATH`: a user's own face network (TorchScript) on the face crop, resized to
  `crop_size` and normalised by `mean`/`std` per channel (pixels scaled to [0, 1] first).

A frame without a face gives None: a gap in the table, never zeros.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emo.core.errors import ConfigError
from emo.data.corpora import normalise_landmarks

if TYPE_CHECKING:
    from emo.extract.batch import Parts

log = logging.getLogger(__name__)

EXTRACTORS = ("landmarks", "embedding", "torchscript:PATH")


def dlib_models() -> Path:
    """The folder of model files the `face_recognition_models` package ships."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("face extraction needs the extract extra: pip install -e '.[extract]'.")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class Landmarks:
    """68 landmarks of the largest face -> 136 normalised shape features + 4 box features."""

    name = "landmarks"

    def __init__(self) -> None:
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_models() / "shape_predictor_68_face_landmarks.dat"))
        self.dim = 140

    def options(self) -> dict:
        """What defines this extractor's output (its models ship with the installed packages)."""
        return {"extractor": self.name}

    def face(self, rgb: np.ndarray):
        """The largest detected face (a dlib rectangle) and its 68 points, or None."""
        upsample = 1 if min(rgb.shape[:2]) < 400 else 0  # HOG finds faces of 80 px and more
        faces = self.detector(rgb, upsample)
        if not len(faces):
            return None
        rect = max(faces, key=lambda r: r.width() * r.height())
        shape = self.predictor(rgb, rect)
        return rect, shape

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        found = self.face(rgb)
        if found is None:
            return None
        rect, shape = found
        pts = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        h, w = rgb.shape[:2]
        box = [
            (rect.left() + rect.right()) / 2 / w,
            (rect.top() + rect.bottom()) / 2 / h,
            rect.width() / w,
            rect.height() / h,
        ]
        return np.r_[normalise_landmarks(pts[None])[0], box].astype(np.float32)


class Embedding(Landmarks):
    """dlib's 128-d face-recognition descriptor of the largest face."""

    name = "embedding"

    def __init__(self) -> None:
        super().__init__()
        self.net = self.dlib.face_recognition_model_v1(str(dlib_models() / "dlib_face_recognition_resnet_model_v1.dat"))
        self.dim = 128

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        found = self.face(rgb)
        if found is None:
            return None
        return np.asarray(self.net.compute_face_descriptor(rgb, found[1]), np.float32)


class TorchScript(Landmarks):
    """A user's TorchScript face network on the crop of the largest face."""

    name = "torchscript"

    def __init__(self, path: str, crop_size: int = 112, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> None:
        import torch

        super().__init__()
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such TorchScript model file (--extractor torchscript:PATH).")
        data = Path(path).read_bytes()
        self.model = f"sha256:{hashlib.sha256(data).hexdigest()[:16]}"  # the file's content, wherever it lies
        try:
            self.net = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
        except Exception as exc:  # a damaged or non-TorchScript file
            raise ConfigError(
                f"{path}: not a TorchScript model ({type(exc).__name__}: {exc}). Save it with "
                f"torch.jit.save(torch.jit.script(model), path)."
            ) from None
        self.torch, self.crop_size, self.rgb_mean, self.rgb_std = torch, crop_size, list(mean), list(std)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.dim = int(self(np.zeros((crop_size, crop_size, 3), np.uint8), whole=True).shape[0])

    def options(self) -> dict:
        return {
            **super().options(),
            "model": self.model,
            "crop_size": self.crop_size,
            "mean": self.rgb_mean,
            "std": self.rgb_std,
        }

    def __call__(self, rgb: np.ndarray, whole: bool = False) -> np.ndarray | None:
        torch = self.torch
        if whole:
            crop = rgb
        else:
            found = self.face(rgb)
            if found is None:
                return None
            r = found[0]
            h, w = rgb.shape[:2]
            crop = rgb[max(r.top(), 0) : min(r.bottom(), h), max(r.left(), 0) : min(r.right(), w)]
        x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, h, w)
        x = torch.nn.functional.interpolate(
            x, size=(self.crop_size, self.crop_size), mode="bilinear", align_corners=False
        )
        with torch.no_grad():
            out = self.net((x - self.mean) / self.std)
        return out.reshape(-1).numpy().astype(np.float32)


def make_extractor(spec: str, *, crop_size: int = 112, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)):
    """The extractor named by `spec`: landmarks, embedding or torchscript:PATH."""
    if spec == "landmarks":
        return Landmarks()
    if spec == "embedding":
        return Embedding()
    if spec.startswith("torchscript:"):
        return TorchScript(spec.split(":", 1)[1], crop_size, mean, std)
    raise ConfigError(f"unknown face extractor {spec!r}; choose one of {', '.join(EXTRACTORS)}.")


def video_options(fps: float, extractor: Landmarks) -> dict[str, dict]:
    """The options the `video` parts are made with: a part made with others is re-made."""
    return {"video": {"fps": fps, **extractor.options()}}


_CACHE: dict[tuple, object] = {}


def video_job(
    path: Path,
    parts: Parts,
    vid: str,
    *,
    fps: float,
    extractor: str,
    crop_size: int = 112,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    progress: bool = False,
) -> tuple[int, float]:
    """One recording -> its `video` part: features of the frames with a face; (rows, seconds of video)."""
    from tqdm import tqdm

    from emo.core.errors import DataError
    from emo.extract.media import decode_frames

    # models load once per process, not once per file, and again when the model file's content changed
    key = (extractor, crop_size, tuple(mean), tuple(std), parts.options["video"].get("model"))
    if key not in _CACHE:
        _CACHE[key] = make_extractor(extractor, crop_size=crop_size, mean=mean, std=std)
    ex = _CACHE[key]
    times, rows, seen, last = [], [], 0, 0.0
    for t, rgb in tqdm(decode_frames(path, fps), desc=path.name, unit="frame", leave=False, disable=not progress):
        seen, last = seen + 1, t
        f = ex(rgb)
        if f is not None:
            times.append(t)
            rows.append(f)
    if not rows:
        raise DataError(f"{path}: no face found in any of its {seen} frames.")
    if len(rows) < seen:
        log.info("%s: a face in %d of %d frames; the others are gaps.", path.name, len(rows), seen)
    parts.write("video", vid, np.array(times), np.stack(rows), [f"emb_{j}" for j in range(len(rows[0]))])
    return len(rows), last
