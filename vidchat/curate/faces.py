"""People: face detection, tracking and mouth opening within one shot.

dlib's HOG detector runs on every `detect_every`-th frame; detections join the track whose last
box centre is nearest (within `max_jump` box widths), tracks seen on fewer than `min_presence`
of the sampled frames are dropped, and each kept track gets one stable box: the median of its
detections (the release crops a clip with one bbox). 68-point landmarks on that box locate the mouth frame by
frame, and its dark interior gives the mouth opening that binds a voice to a face (`vidchat.curate.bind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vidchat.perception.faces import face_models
from vidchat.perception.ssim import luma


@dataclass(frozen=True)
class FaceOptions:
    detect_every: int = 5  # frames between detector runs
    upsample: int = 1  # dlib pyramid upsampling: finds faces down to ~40 px
    max_jump: float = 0.5  # a detection joins a track within this many box widths
    min_presence: float = 0.3  # share of sampled frames a track must be seen on
    max_faces: int = 2  # the two main people (largest tracks)


def detect_tracks(frames: np.ndarray, detector: Any, opts: FaceOptions) -> list[dict]:
    """frames [T,H,W,3] uint8 of one shot -> tracks [{box: [x0,y0,x1,y1] px, presence}],
    largest first."""
    sampled = range(0, len(frames), opts.detect_every)
    tracks: list[dict] = []
    for t in sampled:
        for rect in detector(np.ascontiguousarray(frames[t]), opts.upsample):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], float)
            _join(tracks, box, opts.max_jump)
    kept = []
    for track in tracks:
        presence = len(track["boxes"]) / len(sampled)
        if presence >= opts.min_presence:
            box = np.median(np.asarray(track["boxes"]), axis=0)
            kept.append({"box": [round(float(v), 1) for v in box], "presence": round(presence, 3)})
    kept.sort(key=lambda k: -(k["box"][2] - k["box"][0]) * k["presence"])
    return kept[: opts.max_faces]


def _join(tracks: list[dict], box: np.ndarray, max_jump: float) -> None:
    centre, width = (box[:2] + box[2:]) / 2, box[2] - box[0]
    best, best_d = None, max_jump * width
    for track in tracks:
        d = float(np.linalg.norm(track["centre"] - centre))
        if d <= best_d:
            best, best_d = track, d
    if best is None:
        tracks.append({"centre": centre, "boxes": [box]})
    else:
        best["boxes"].append(box)
        best["centre"] = centre


def mouth_track(frames: np.ndarray, box: list[float], predictor: Any) -> np.ndarray:
    """[T] mouth opening of the face in `box`, frame by frame.

    Landmarks (on the stable box) locate the mouth; the opening is the dark share of that
    region: pixels darker than half the face's median luma, over the squared mouth width. An
    open mouth shows its dark interior on real and drawn faces alike, whereas the landmarks'
    own lip gap misreads drawn lips: on 28 demo faces it followed the true opening with
    Pearson r as low as -0.44 (median 0.51), the dark share with r >= 0.96; on the real
    carphone face the two agree (r = 0.95).
    """
    import dlib

    x0, y0, x1, y1 = (int(round(v)) for v in box)
    rect = dlib.rectangle(x0, y0, x1, y1)
    out = np.empty(len(frames))
    for t, frame in enumerate(frames):
        frame = np.ascontiguousarray(frame)
        shape = predictor(frame, rect)
        lips = np.array([(p.x, p.y) for p in shape.parts()][48:60], dtype=np.float64)  # [12,2]
        (lx, ly), (hx, hy) = lips.min(0), lips.max(0)
        pad = 0.3 * (hy - ly)
        mouth = frame[max(int(ly - pad), 0) : int(hy + pad) + 1, max(int(lx), 0) : int(hx) + 1]
        face = frame[max(y0, 0) : y1, max(x0, 0) : x1]
        if mouth.size == 0 or face.size == 0:
            out[t] = np.nan
            continue
        threshold = 0.5 * float(np.median(luma(face)))
        out[t] = float((luma(mouth) < threshold).sum()) / max((hx - lx) ** 2, 1.0)
    return out


def crop_box(box: list[float], scale: float, width: int, height: int) -> list[float]:
    """The clip's square crop around a face box, `scale` times its side, kept inside the
    frame -> normalised [x0, y0, x1, y1] (the release's bbox)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = min(max(box[2] - box[0], box[3] - box[1]) * scale, width, height)
    x0 = min(max(cx - side / 2, 0.0), width - side)
    y0 = min(max(cy - side / 2, 0.0), height - side)
    return [
        round(x0 / width, 5),
        round(y0 / height, 5),
        round((x0 + side) / width, 5),
        round((y0 + side) / height, 5),
    ]


def spread_frames(length: int, count: int) -> np.ndarray:
    """`min(count, length)` frame indices spread evenly over a shot of `length` frames, first and
    last included (the frames a per-shot network looks at)."""
    return np.linspace(0, length - 1, min(count, length)).round().astype(int)


def load_models() -> tuple[Any, Any]:
    """dlib's HOG detector and 68-point landmark predictor (weights from the eval extra)."""
    detector, predictor, _ = face_models()
    return detector, predictor
