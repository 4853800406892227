"""DOVER from user-given TorchScript weights (`dover.weights`): each face track is scored on its
clip crop, its clips inherit the score, `quality.min_dover` drops and `sft_min_dover` keeps
clips out of SFT. A scripted stand-in (sharpness as the score) scores real demo frames; the
people stage runs it in `test_syncnet_binding.py`."""

from __future__ import annotations

import pytest
import torch

from tests.curate.test_filters import _blur
from tests.curate.test_plan import plan_with_face_scores
from vidchat.curate.config import CurateConfig
from vidchat.curate.dover import DoverOptions, dover_score
from vidchat.curate.quality import QualityOptions
from vidchat.curate.release import is_sft
from vidchat.errors import ConfigError
from vidchat.media import read_clip


class _SharpnessNet(torch.nn.Module):
    """DOVER's interface: [1,3,T,H,W] RGB 0-255 -> a score in [0,1], here the mean horizontal
    gradient (a blurred clip scores low)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grad = (x[..., 1:] - x[..., :-1]).abs().mean()
        return (grad / 10.0).clamp(0.0, 1.0).reshape(1)


def test_a_blurred_copy_scores_lower_on_every_face(one_raw_source):
    path, truth = one_raw_source
    shot = truth["shots"][0]
    frames = read_clip(path, start=shot["start"] / truth["fps"], duration=2.0).frames
    net, opts = torch.jit.script(_SharpnessNet()), DoverOptions(frames=8)
    assert len(shot["faces"]) == 2  # both people of the source
    for box in shot["faces"].values():
        good = dover_score(net, frames, [float(v) for v in box], opts)
        blurred = dover_score(net, _blur(frames, 3.0), [float(v) for v in box], opts)
        assert 0 < blurred < 0.7 * good


def test_clips_inherit_their_faces_dover_and_are_judged_by_it(tmp_path):
    # the talker's face good, the listener's poor (and sharp: only DOVER can drop it)
    plan = plan_with_face_scores(tmp_path, {"dover": 0.7}, {"dover": 0.1})
    (kept,) = plan.clips["x"]
    assert kept["stem"].endswith("_A") and kept["scores"]["dover"] == 0.7
    dropped = plan.report["filters"]["DOVER"]["dropped_items"]
    assert [d["item"] for d in dropped] == ["x_full_video_100x200_000_B_None"]
    assert "DOVER 0.10 below 0.25" in dropped[0]["reason"]
    assert is_sft(kept, QualityOptions()) and not is_sft(kept, QualityOptions(sft_min_dover=0.8))


def test_bad_dover_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"curate\.dover\.weights"):
        CurateConfig(input=".", output=str(tmp_path), dover=DoverOptions(weights="nope.pt"))
    with pytest.raises(ConfigError, match=r"curate\.dover\.frames"):
        CurateConfig(input=".", output=str(tmp_path), dover=DoverOptions(frames=0))
