"""Hand blur from a user-given TorchScript hand detector (`hands.detector`): hands inside a
person's clip crop are scored like the face, clips inherit the score, and the plan drops and
keeps clips by it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.curate.test_filters import _blur
from tests.curate.test_plan import plan_with_face_scores
from vidchat.curate.config import CurateConfig
from vidchat.curate.hands import HandOptions
from vidchat.curate.quality import QualityOptions
from vidchat.curate.release import is_sft
from vidchat.curate.stages import PeopleModels, StageOptions, _score_faces
from vidchat.errors import ConfigError

HAND = [50.0, 82.0, 80.0, 102.0]  # x0, y0, x1, y1 px: under the left face, inside its crop
STRAY = [150.0, 130.0, 170.0, 150.0]  # inside nobody's crop


class _FixedHands(torch.nn.Module):
    """A hand detector's interface that always finds the same two boxes (with a score)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("boxes", torch.tensor([HAND + [0.9], STRAY + [0.8]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [1,3,H,W] -> [N,5]
        return self.boxes + 0 * x.mean()


class _NoHands(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(0, 4) + 0 * x.mean()


def _frames(sharp: bool) -> np.ndarray:
    """Grey frames [T,H,W,3] with a checkered 'hand' at HAND (blurred unless `sharp`)."""
    frames = np.full((6, 160, 320, 3), 120, np.uint8)
    x0, y0, x1, y1 = (int(v) for v in HAND)
    check = ((np.indices((y1 - y0, x1 - x0)).sum(0) // 3) % 2 * 160 + 40).astype(np.uint8)
    frames[:, y0:y1, x0:x1] = check[None, :, :, None]
    return frames if sharp else _blur(frames, 3.0)


def _tracks() -> list[dict]:
    return [{"box": [40.0, 30.0, 90.0, 80.0]}, {"box": [230.0, 30.0, 280.0, 80.0]}]


def _score(frames: np.ndarray, net: torch.nn.Module) -> list[dict]:
    tracks = _tracks()
    models = PeopleModels(None, None, hands=torch.jit.script(net))
    _score_faces(frames, tracks, models, StageOptions(hands=HandOptions()))
    return tracks


def test_hands_in_a_persons_crop_are_scored_and_blur_lowers_the_score():
    sharp, blurred = _score(_frames(True), _FixedHands()), _score(_frames(False), _FixedHands())
    assert "hand_sharpness" in sharp[0] and "hand_sharpness" not in sharp[1]  # stray box: no one's
    assert blurred[0]["hand_sharpness"] < 0.1 * sharp[0]["hand_sharpness"]
    assert all("hand_sharpness" not in t for t in _score(_frames(True), _NoHands()))


def test_clips_are_judged_by_their_hands_when_scored(tmp_path):
    # the listener's face is sharp: only the hands can drop it
    plan = plan_with_face_scores(tmp_path, {"hand_sharpness": 500.0}, {"hand_sharpness": 20.0})
    (kept,) = plan.clips["x"]
    assert kept["stem"].endswith("_A") and kept["scores"]["hand_sharpness"] == 500.0
    dropped = plan.report["filters"]["hand blur"]["dropped_items"]
    assert [d["item"] for d in dropped] == ["x_full_video_100x200_000_B_None"]
    assert is_sft(kept, QualityOptions())
    assert not is_sft(kept, QualityOptions(sft_min_hand_sharpness=600.0))


def test_a_missing_detector_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"curate\.hands\.detector"):
        CurateConfig(input=".", output=str(tmp_path), hands=HandOptions(detector="nope.pt"))
