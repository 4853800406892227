"""`Clip`: decoded frames and audio of one time window, with their rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Clip:
    """Frames `[T,H,W,3] uint8` and mono audio `[S] float32` in [-1, 1] over the same window.

    `duration` is the video's duration `T / fps` (or the audio's `S / sample_rate` for a
    clip without video); the audio always holds `round(duration * sample_rate)` samples.
    """

    frames: np.ndarray  # [T,H,W,3] uint8
    audio: np.ndarray  # [S] float32
    fps: float
    sample_rate: int
    duration: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])
