"""Quality measures and filters: luminance, clarity, face sharpness.

- luminance: mean luma of a shot, kept in [10, 210] (`vidchat.curate.shots`);
- clarity: the source's video bitrate / sqrt(H*W) (bits per second per pixel side, the
  paper's "clear" score); the worst `drop_share` (5%) of clips over the whole run are dropped;
- face sharpness: variance of the Laplacian of the face crop, in grey, resized to 64 px so that
  the score does not depend on the face's size; below `min_face_sharpness` the face is blurred.

With `speech.asr=pocketsphinx`, each clip also gets the ASR confidence and no-speech share of
its turns (`vidchat.curate.asr`); a talking clip with `no_speech >= max_no_speech` is dropped.
With DOVER weights (`vidchat.curate.dover`), a clip below `min_dover` is dropped and SFT needs
`sft_min_dover`; with a hand detector (`vidchat.curate.hands`), hands are judged as the face is.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from vidchat.media.frames import bbox_to_pixels
from vidchat.perception.ssim import luma

SHARPNESS_SIDE = 64
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


@dataclass(frozen=True)
class QualityOptions:
    drop_share: float = 0.05  # worst share of clips by clarity dropped
    min_face_sharpness: float = 100.0  # demo faces: 2,500 sharp, 250 at a 1 px blur, 24 at 3 px
    sft_min_face_sharpness: float = 300.0  # SFT membership also needs...
    sft_min_sync: float = 0.5  # ...the voice-face sync of a talking clip
    max_no_speech: float = 0.8  # with ASR: a talking clip the decoder finds no words in is dropped
    min_dover: float = 0.25  # with DOVER weights: clips below are dropped (the paper's floor)...
    sft_min_dover: float = 0.6  # ...and SFT membership needs at least this (the paper's SFT bar)
    min_hand_sharpness: float = 100.0  # with a hand detector: clips with blurred hands dropped...
    sft_min_hand_sharpness: float = 300.0  # ...and SFT needs sharper (as for the face)


def clarity(path: str, height: int, width: int) -> float:
    """Video bitrate (bit/s) over sqrt(H*W): from the stream, else the container's."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        bitrate = stream.bit_rate or container.bit_rate or 0
    return round(float(bitrate) / float(np.sqrt(height * width)), 3)


def _resize(grey: np.ndarray, side: int) -> np.ndarray:
    rows = np.linspace(0, grey.shape[0] - 1, side).round().astype(int)
    cols = np.linspace(0, grey.shape[1] - 1, side).round().astype(int)
    return grey[rows][:, cols]


def face_sharpness(frames: np.ndarray, bbox: list[float]) -> float:
    """Mean Laplacian variance of the crop `bbox` (normalised) over frames [T,H,W,3]."""
    h, w = frames.shape[1:3]
    x0, y0, x1, y1 = bbox_to_pixels(bbox, h, w)
    values = []
    for frame in frames:
        small = _resize(luma(frame[y0:y1, x0:x1]), SHARPNESS_SIDE)
        lap = sum(
            _LAPLACIAN[i, j] * small[i : i + SHARPNESS_SIDE - 2, j : j + SHARPNESS_SIDE - 2]
            for i in range(3)
            for j in range(3)
        )
        values.append(float(lap.var()))
    return round(float(np.mean(values)), 3) if values else 0.0


def clarity_floor(values: list[float], drop_share: float) -> float:
    """The clarity below which a clip is among the worst `drop_share` of the run."""
    if not values or drop_share <= 0:
        return -np.inf
    return float(np.quantile(np.asarray(values), drop_share))
