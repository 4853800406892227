"""DOVER video quality per face track, when the user gives its weights (`dover.weights`).

The paper drops clips whose DOVER score is below 0.25 and keeps those above 0.6 for SFT. DOVER's
weights do not install offline, so, as for SyncNet, the network comes from a local TorchScript
file with this contract: `forward(x [1,3,T,H,W] float, RGB in 0-255)` returns the clip's
quality score(s), higher is better (an export of DOVER's fused score, its own view sampling and
normalisation inside; several outputs are averaged). Each kept face track of a shot is scored on
`frames` frames spread over the shot, cropped as its clips are cut (`crop_scale` times the face
box, square) and resized to `size`; the track's clips inherit the score
(`vidchat.curate.release`), which `quality.min_dover` and `quality.sft_min_dover` then judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vidchat.curate.faces import crop_box, spread_frames
from vidchat.media.frames import bbox_to_pixels
from vidchat.perception.frames import resize_frames


@dataclass(frozen=True)
class DoverOptions:
    weights: str | None = None  # TorchScript DOVER; None: no DOVER score
    frames: int = 32  # frames spread over the shot
    size: int = 224  # crops resized to size x size
    crop_scale: float = 1.6  # the crop around the face box, as clips.crop_scale


def dover_score(net: Any, frames: np.ndarray, box: list[float], opts: DoverOptions) -> float:
    """The score of the face in pixel `box` over a shot's frames `[T,H,W,3]` uint8."""
    import torch

    h, w = frames.shape[1:3]
    x0, y0, x1, y1 = bbox_to_pixels(crop_box(box, opts.crop_scale, w, h), h, w)
    picked = spread_frames(len(frames), opts.frames)
    crops = resize_frames(np.ascontiguousarray(frames[picked, y0:y1, x0:x1]), opts.size, opts.size)
    x = torch.from_numpy(crops).permute(3, 0, 1, 2)[None].float()  # [1,3,T,S,S]
    with torch.inference_mode():
        return round(float(net(x).float().mean()), 4)
