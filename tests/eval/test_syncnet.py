"""SyncNet confidence: offset search on known features, MFCC layout, and a scripted stand-in net."""

import numpy as np
import pytest
import torch

from vidchat.eval.metrics.syncnet import syncnet_confidence
from vidchat.perception.mfcc import mfcc
from vidchat.perception.syncnet import sync_offsets


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
    """Scripted stand-in with the SyncNet interface: lip = the centre frame's brightness, audio =
    the centre MFCC frames' log energy, each standardised over its batch so the two compare."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:  # [N,3,5,224,224]
        v = x[:, :, 2].mean(dim=(1, 2, 3)).unsqueeze(1)  # centre frame brightness -> [N,1]
        return (v - v.mean()) / (v.std() + 1e-6)

    @torch.jit.export
    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:  # [N,1,13,20]
        v = x[:, 0, 0, 8:12].mean(dim=1, keepdim=True)  # c0 = log energy, centre 40 ms -> [N,1]
        return (v - v.mean()) / (v.std() + 1e-6)


def _gain_clip(frames: np.ndarray, gains: np.ndarray, audio_gains: np.ndarray) -> tuple:
    """Frames brightened per frame by `gains`; noise whose log energy follows `audio_gains`,
    one 25 fps frame (640 samples) per value."""
    lit = np.clip(frames.astype(np.float32) * gains[:, None, None, None], 0, 255).astype(np.uint8)
    amp = 0.1 * np.exp(5 * (np.repeat(audio_gains, 640) - 1))  # log energy linear in the gain
    noise = np.random.default_rng(1).normal(0, 1, len(amp))
    return lit, (noise * amp).astype(np.float32)


def test_without_weights_is_skipped_with_a_reason():
    with pytest.warns(UserWarning, match="syncnet"):
        res = syncnet_confidence(
            np.zeros((10, 8, 8, 3), np.uint8), np.zeros(8000, np.float32), 25, 16000
        )
    assert not res.available and "SyncNet" in res.reason


@pytest.mark.slow
def test_scripted_network_runs_end_to_end_on_a_real_face(tmp_path, carphone_frames):
    # A real face whose brightness follows a random gain, and audio whose loudness follows the
    # same gain k frames later: through face detection, crops, MFCC windows and the offset
    # search, the stand-in net must find audio k frames late, and be surer than on audio that
    # follows another gain sequence.
    pytest.importorskip("dlib")
    path = tmp_path / "syncnet.pt"
    torch.jit.script(_StandIn()).save(str(path))
    frames = carphone_frames[:45]
    gains = np.random.default_rng(0).choice([0.6, 1.0], size=len(frames))
    other = np.random.default_rng(7).choice([0.6, 1.0], size=len(frames))
    results = {}
    for name, audio_gains in (
        ("in_sync", gains),
        ("late_2", np.r_[gains[:2], gains[:-2]]),
        ("unrelated", other),
    ):
        lit, audio = _gain_clip(frames, gains, audio_gains)
        results[name] = syncnet_confidence(lit, audio, 25, 16000, weights=path, vshift=4)
    assert all(r.available for r in results.values())
    assert results["in_sync"].details["offset"] == 0
    assert results["late_2"].details["offset"] == 2  # positive = audio late, as lip_sync's lag
    assert results["in_sync"].value > 0.4
    assert results["in_sync"].value > 2 * results["unrelated"].value
