"""Hand blur from a user-given hand detector (`hands.detector`), as the paper scores hands.

No hand detector installs offline beside this project's dependencies (`mediapipe` 0.10.21, the
last with hand models in its wheel, needs numpy < 2), so, as for SyncNet and DOVER, the network
comes from a local TorchScript file with this contract: `forward(image [1,3,H,W] float, RGB in
0-255)` returns hand boxes `[N,4]` (or `[N,5+]`, extra columns ignored) as pixel
`x0, y0, x1, y1`. On `frames` frames spread over a shot, each hand whose centre lies inside a
person's clip crop is scored like the face (variance of the Laplacian at 64 px,
`vidchat.curate.quality.face_sharpness`); the person's `hand_sharpness` is the mean over those
hands, absent when none was found (a clip without visible hands is not judged by them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vidchat.curate.faces import crop_box, spread_frames
from vidchat.curate.quality import face_sharpness


@dataclass(frozen=True)
class HandOptions:
    detector: str | None = None  # TorchScript hand detector; None: no hand-blur score
    frames: int = 8  # frames spread over the shot
    crop_scale: float = 1.6  # a person's clip crop around the face box, as clips.crop_scale


def hand_sharpness(
    net: Any, frames: np.ndarray, face_boxes: list[list[float]], opts: HandOptions
) -> list[float | None]:
    """Per face (pixel box), the mean sharpness of the hands inside its clip crop over a shot's
    frames `[T,H,W,3]` uint8; None for a face with no hand found."""
    import torch

    h, w = frames.shape[1:3]
    crops = [crop_box(box, opts.crop_scale, w, h) for box in face_boxes]  # normalised
    values: list[list[float]] = [[] for _ in face_boxes]
    for t in spread_frames(len(frames), opts.frames):
        image = torch.from_numpy(np.ascontiguousarray(frames[t])).permute(2, 0, 1)[None].float()
        with torch.inference_mode():
            out = net(image).float()
        boxes = out.reshape(-1, out.shape[-1])[:, :4].numpy() if out.numel() else []
        for x0, y0, x1, y1 in boxes:
            cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
            box = [x0 / w, y0 / h, x1 / w, y1 / h]
            for k, (c0, r0, c1, r1) in enumerate(crops):
                if c0 <= cx <= c1 and r0 <= cy <= r1:
                    values[k].append(face_sharpness(frames[t : t + 1], box))
    return [round(float(np.mean(v)), 3) if v else None for v in values]
