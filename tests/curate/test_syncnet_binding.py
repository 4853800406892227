"""Voice-to-face binding by SyncNet (`sync.syncnet`): with a scripted stand-in that has
SyncNet's interface, the people stage binds each demo voice to its own face, and a net that
sees nothing binds no voice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidchat.curate.config import CurateConfig
from vidchat.curate.stages import StageOptions, people_stage, shots_stage
from vidchat.curate.syncnet_bind import SyncOptions
from vidchat.errors import ConfigError


class _MouthNet(torch.nn.Module):
    """SyncNet's interface: lip = darkness of the centre frame's lower middle (an open mouth's
    interior), audio = the centre MFCC frames' log energy; each standardised over its batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:  # [N,3,5,224,224] BGR
        v = -x[:, :, 2, 112:190, 72:152].mean(dim=(1, 2, 3)).unsqueeze(1)  # [N,1]
        return (v - v.mean()) / (v.std() + 1e-6)

    @torch.jit.export
    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:  # [N,1,13,20]
        v = x[:, 0, 0, 8:12].mean(dim=1, keepdim=True)  # [N,1]
        return (v - v.mean()) / (v.std() + 1e-6)


class _BlindNet(_MouthNet):
    @torch.jit.export
    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 1)


@pytest.fixture(scope="module")
def source(one_raw_source):
    return one_raw_source


def _bound_right(result: dict, truth: dict) -> list[bool]:
    """Per (shot, bound voice): is the bound face's centre inside that voice's true face box?"""
    right = []
    for shot in result["shots"]:
        mid = (shot["start"] + shot["end"]) / 2
        true_shot = next(s for s in truth["shots"] if s["start"] <= mid < s["end"])
        for speaker, bound in shot["binding"].items():
            x0, y0, x1, y1 = shot["faces"][bound["face"]]["box"]
            tx0, ty0, tx1, ty1 = true_shot["faces"][speaker]
            right.append(tx0 <= (x0 + x1) / 2 <= tx1 and ty0 <= (y0 + y1) / 2 <= ty1)
    return right


def _people(path, truth, tmp_path) -> dict:
    """The people stage with the SyncNet stand-in binding voices, and DOVER's scoring faces."""
    from tests.curate.test_dover import _SharpnessNet
    from vidchat.curate.dover import DoverOptions
    from vidchat.curate.pipeline import _people_models

    torch.jit.script(_MouthNet()).save(str(tmp_path / "syncnet.pt"))
    torch.jit.script(_SharpnessNet()).save(str(tmp_path / "dover.pt"))
    opts = StageOptions(
        sync=SyncOptions(syncnet=str(tmp_path / "syncnet.pt"), min_conf=0.5),
        dover=DoverOptions(weights=str(tmp_path / "dover.pt"), frames=4),
    )
    models = _people_models(opts, "cpu")  # as the people actors load them
    speech = {"turns": truth["speech"]}  # the true turns: this test is about binding
    return people_stage(str(path), shots_stage(str(path), opts), speech, models, opts)


@pytest.mark.slow
def test_syncnet_binds_each_voice_to_its_face(source, tmp_path):
    path, truth = source
    result = _people(path, truth, tmp_path)
    right = _bound_right(result, truth)
    assert len(right) >= len(result["shots"]) and np.mean(right) >= 0.95
    confs = [b["sync"] for s in result["shots"] for b in s["binding"].values()]
    assert min(confs) >= 0.5
    assert all(0 < f["dover"] <= 1 for s in result["shots"] for f in s["faces"])  # DOVER ran too


def test_a_net_that_sees_nothing_finds_no_sync(source):
    """On a shot, with the true faces and turns: the stand-in finds each voice's own face and not
    the other (0.70 and 0.66 against 0.26 and 0.23), a net blind to lips tells no face apart."""
    from vidchat.curate.bind import speaker_frames
    from vidchat.curate.syncnet_bind import syncnet_scores
    from vidchat.media import read_clip

    path, truth = source
    shot = next(s for s in truth["shots"] if s["end"] - s["start"] >= 100)
    fps = truth["fps"]
    clip = read_clip(
        path,
        sample_rate=16000,
        start=shot["start"] / fps,
        duration=(shot["end"] - shot["start"]) / fps,
    )
    boxes = [shot["faces"]["A"], shot["faces"]["B"]]
    talk = speaker_frames(truth["speech"], shot["start"], shot["start"] + len(clip.frames), fps)
    opts = SyncOptions(min_frames=6)
    seeing = syncnet_scores(
        torch.jit.script(_MouthNet()), clip.frames, clip.audio, fps, boxes, talk, opts
    )
    blind = syncnet_scores(
        torch.jit.script(_BlindNet()), clip.frames, clip.audio, fps, boxes, talk, opts
    )
    for k, speaker in enumerate(("A", "B")):
        if speaker in seeing:
            assert seeing[speaker][k] > max(0.3, 2 * seeing[speaker][1 - k])
    # blind: the same (padding-only) confidence for both faces, below the binding bar
    assert talk and all(r[0] == r[1] < 0.5 for r in blind.values())


def test_bad_syncnet_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"curate\.sync\.syncnet"):
        CurateConfig(input=".", output=str(tmp_path), sync=SyncOptions(syncnet="missing.pt"))
    with pytest.raises(ConfigError, match=r"curate\.sync\.min_frames"):
        CurateConfig(input=".", output=str(tmp_path), sync=SyncOptions(min_frames=3))
