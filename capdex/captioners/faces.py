"""Faces found in an image, offline: dlib's HOG detector, 5-point landmarks and the ResNet that
gives 128-d descriptors (99.38% on LFW), with the weights `face_recognition_models` ships.

Why dlib (measured on the shared face photos, docs/people.md): every labelled face is found at
1024 px on the long side without upsampling, a photo costs ~0.05-0.15 s to search and ~0.08 s
per face to describe on one core, and the same person's descriptors lie 0.36-0.41 apart while
different people's lie 0.78 or more apart. Detection runs on a downscale (`detect_side`): HOG's
window finds faces of ~80 px and more there, so a 12-MP photo costs what a 1-MP one does.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

INSTALL = "pip install 'capdex[faces]'"
DETECT_SIDE = 1024
#: Descriptor distance under which two faces are taken to be one person: the same person's
#: faces in the shared photos lie 0.36-0.41 apart, different people's 0.78+ (dlib suggests 0.6).
SAME_PERSON = 0.5


class FacesUnavailable(RuntimeError):
    """dlib or its models are not installed (or do not load): the faces stage cannot run."""


@dataclass(frozen=True)
class FoundFace:
    """One face: its box as fractions of the image (x, y, w, h), detection score, descriptor."""

    box: tuple[float, float, float, float]
    score: float
    descriptor: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": self.score, "descriptor": self.descriptor}


def models_dir() -> Path:
    """The folder of `face_recognition_models`' weights, found without importing the package
    (its `__init__` imports pkg_resources, gone from recent setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacesUnavailable(f"face_recognition_models is not installed: {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceEngine:
    """Finds faces and describes them; models load once, lazily, under a lock."""

    name = "dlib-hog"

    def __init__(self, detect_side: int = DETECT_SIDE, upsample: int = 0) -> None:
        self.detect_side = detect_side
        self.upsample = upsample
        self._lock = threading.Lock()
        self._models: tuple[Any, Any, Any] | None = None

    @property
    def version(self) -> str:
        """Engine, library and weights versions plus the detection size: a change redoes faces."""
        try:
            dlib_version = metadata.version("dlib-bin")
        except metadata.PackageNotFoundError:
            dlib_version = _version_or("dlib")
        weights = _version_or("face_recognition_models")
        return (f"{self.name} dlib-{dlib_version} models-{weights} "
                f"side-{self.detect_side} up-{self.upsample}")

    def check_installed(self) -> None:
        """Raise `FacesUnavailable` naming the extra when dlib or the weights are missing."""
        if importlib.util.find_spec("dlib") is None:
            raise FacesUnavailable(f"finding faces needs dlib: {INSTALL}")
        for name in ("shape_predictor_5_face_landmarks.dat",
                     "dlib_face_recognition_resnet_model_v1.dat"):
            if not (models_dir() / name).is_file():
                raise FacesUnavailable(f"{name} is missing from face_recognition_models: "
                                       f"{INSTALL}")

    def load(self) -> tuple[Any, Any, Any]:
        with self._lock:
            if self._models is None:
                self.check_installed()
                try:
                    import dlib

                    folder = models_dir()
                    self._models = (
                        dlib.get_frontal_face_detector(),
                        dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")),
                        dlib.face_recognition_model_v1(
                            str(folder / "dlib_face_recognition_resnet_model_v1.dat")),
                    )
                except (ImportError, RuntimeError) as exc:
                    raise FacesUnavailable(f"the face models do not load: {exc}") from exc
            return self._models

    def fit(self, image: Image.Image) -> Image.Image:
        """The image at most `detect_side` a side, RGB (a copy only when it must change)."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        if max(image.size) > self.detect_side:
            image = image.copy()
            image.thumbnail((self.detect_side, self.detect_side))
        return image

    def find(self, image: Image.Image) -> list[FoundFace]:
        """Every face in `image` (fit it first: the size decides the cost), best score first."""
        import numpy as np

        detector, landmarks, describe = self.load()
        pixels = np.asarray(self.fit(image))
        height, width = pixels.shape[:2]
        rects, scores, _ = detector.run(pixels, self.upsample, 0.0)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            shape = landmarks(pixels, rect)
            descriptor = np.asarray(describe.compute_face_descriptor(pixels, shape, 0),
                                    dtype=np.float32)
            left, top = max(rect.left(), 0), max(rect.top(), 0)
            right, bottom = min(rect.right(), width), min(rect.bottom(), height)
            box = (round(left / width, 5), round(top / height, 5),
                   round((right - left) / width, 5), round((bottom - top) / height, 5))
            found.append(FoundFace(box, round(float(score), 4), descriptor.tolist()))
        return sorted(found, key=lambda f: -f.score)


def _version_or(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


_shared: FaceEngine | None = None
_shared_lock = threading.Lock()


def shared_engine() -> FaceEngine:
    """One engine per process (its models are ~100 MB)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FaceEngine()
        return _shared
