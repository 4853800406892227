"""dlib face analysis: HOG detector, 68 landmarks, 128-d identity ResNet (all offline).

The landmark and ResNet weights come from the `face-recognition-models` package (eval extra);
dlib itself from `dlib-bin`. Everything is loaded once, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from vidchat.errors import VidchatError
from vidchat.perception.weights import missing_extra, package_dir


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in pixels
    landmarks: np.ndarray  # [68,2] float (x, y)
    shape: Any  # dlib.full_object_detection, for the embedding network


def faces_unavailable_reason() -> str | None:
    """None when dlib and the face models are installed, else why not."""
    import importlib.util

    if importlib.util.find_spec("dlib") is None:
        return missing_extra("dlib-bin")
    if package_dir("face_recognition_models") is None:
        return missing_extra("face-recognition-models")
    return None


@lru_cache(maxsize=1)
def face_models() -> tuple[Any, Any, Any]:
    """dlib's HOG detector, 68-point landmark predictor and identity ResNet (loaded once)."""
    reason = faces_unavailable_reason()
    if reason:
        raise VidchatError(reason)
    import dlib

    # Not imported: the package's __init__ needs pkg_resources, which new setuptools dropped.
    models = package_dir("face_recognition_models") / "models"  # type: ignore[operator]
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def detect_face(image: np.ndarray, upsample: int = 1) -> Face | None:
    """Largest face in one `[H,W,3] uint8` RGB image, or None."""
    detector, predictor, _ = face_models()
    image = np.ascontiguousarray(image)
    rects = detector(image, upsample)
    if len(rects) == 0:
        return None
    rect = max(rects, key=lambda r: r.width() * r.height())
    shape = predictor(image, rect)
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # [68,2]
    box = (rect.left(), rect.top(), rect.right(), rect.bottom())
    return Face(box=box, landmarks=pts, shape=shape)


def face_embedding(image: np.ndarray, face: Face | None = None) -> np.ndarray | None:
    """128-d dlib ResNet identity descriptor of the largest face, or None without a face."""
    face = face if face is not None else detect_face(image)
    if face is None:
        return None
    _, _, net = face_models()
    return np.asarray(
        net.compute_face_descriptor(np.ascontiguousarray(image), face.shape), dtype=np.float64
    )


def mouth_opening_from_landmarks(landmarks: np.ndarray) -> float:
    """Inner-lip gap over the inter-ocular distance for one [68,2] landmark set.

    The eyes are used as the face scale because, unlike the chin, they do not move when the
    mouth opens.
    """
    gap = np.linalg.norm(landmarks[[61, 62, 63]] - landmarks[[67, 66, 65]], axis=1).mean()
    eyes = np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0))
    return float(gap / max(eyes, 1e-6))


def dlib_mouth_opening(frames: np.ndarray) -> np.ndarray:
    """[T,H,W,3] uint8 -> [T] mouth opening (NaN where no face was found)."""
    out = np.full(len(frames), np.nan)
    for i, frame in enumerate(frames):
        face = detect_face(frame)
        if face is not None:
            out[i] = mouth_opening_from_landmarks(face.landmarks)
    return out


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[68,2] -> [5,2]: eye centres (image left, right), nose tip, mouth corners (ArcFace order)."""
    return np.stack(
        [
            landmarks[36:42].mean(0),
            landmarks[42:48].mean(0),
            landmarks[30],
            landmarks[48],
            landmarks[54],
        ]
    )
