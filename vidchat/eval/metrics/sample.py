"""What the per-sample metrics look at: one generated responder turn and its references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EvalSample:
    """One generated turn with whatever ground truth the benchmark has for it.

    generated_frames: [T,H,W,3] uint8 at `fps`; generated_audio: [S] float32 at `sample_rate`.
    target_*: the real responder's turn (ground truth), same rates. reference_image: [H,W,3]
    uint8 of the responder (identity prompt). reference_audio: [S'] float32 voice prompt at
    `sample_rate` (falls back to target_audio). labels: dataset labels (e.g. demo world).
    """

    generated_frames: np.ndarray
    generated_audio: np.ndarray
    fps: float
    sample_rate: int
    target_frames: np.ndarray | None = None
    target_audio: np.ndarray | None = None
    reference_image: np.ndarray | None = None
    reference_audio: np.ndarray | None = None
    transcript: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def voice_reference(self) -> np.ndarray | None:
        return self.reference_audio if self.reference_audio is not None else self.target_audio
