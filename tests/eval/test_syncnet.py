"""SyncNet confidence: offset search on known features, MFCC layout, and a scripted stand-in net."""

import numpy as np
import pytest
import torch

from vidchat.eval.metrics.mfcc import mfcc
from vidchat.eval.metrics.syncnet import sync_offsets, syncnet_confidence


def test_sync_offsets_find_a_known_shift():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(60, 8))
    late = np.concatenate([rng.normal(size=(4, 8)), feats[:-4]])  # audio 4 frames late
    offset, conf, min_dist = sync_offsets(feats, late, vshift=6)
    assert offset == 4 and conf > 1.0
    assert min_dist < 0.3  # only the last 4 frames, compared with padding, are off
    assert sync_offsets(feats, feats, vshift=6)[0] == 0


def test_mfcc_rate_and_energy_coefficient():
    sr = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    feats = mfcc(tone, sr)
    assert feats.shape == (99, 13)  # 100 frames/s: 1 + ceil((16000 - 400) / 160)
    quiet = mfcc(tone * 0.1, sr)
    # c0 is the log frame energy: 20 dB quieter is log(100) lower; other cepstra barely change
    assert (feats[5:-5, 0] - quiet[5:-5, 0]) == pytest.approx(np.log(100), abs=1e-2)
    assert np.abs(feats[5:-5, 1:] - quiet[5:-5, 1:]).max() < 0.5


class _StandIn(torch.nn.Module):
    """Scripted stand-in with the SyncNet interface: lip = brightness, audio = energy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:  # [N,3,5,224,224]
        return x.mean(dim=(1, 3, 4))[:, 2:3] / 255.0  # centre frame brightness -> [N,1]

    @torch.jit.export
    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:  # [N,1,13,20]
        return x[:, 0, 0, 8:12].mean(dim=1, keepdim=True) * 0.0  # constant -> no preferred offset


def test_without_weights_is_skipped_with_a_reason():
    with pytest.warns(UserWarning, match="syncnet"):
        res = syncnet_confidence(
            np.zeros((10, 8, 8, 3), np.uint8), np.zeros(8000, np.float32), 25, 16000
        )
    assert not res.available and "SyncNet" in res.reason


@pytest.mark.slow
def test_scripted_network_runs_end_to_end_on_a_real_face(tmp_path, carphone_frames):
    pytest.importorskip("dlib")
    path = tmp_path / "syncnet.pt"
    torch.jit.script(_StandIn()).save(str(path))
    frames = carphone_frames[:40]
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)
    res = syncnet_confidence(frames, audio, 30000 / 1001, 16000, weights=path, vshift=3)
    assert res.available and res.value >= 0.0 and -3 <= res.details["offset"] <= 3
