"""The live partner's buffers: resampled voice, VAD windows on the mic clock, turns cut with the
camera frame shown at each of the responder's frame times."""

from __future__ import annotations

import numpy as np
import pytest

from vidchat.live.partner import PartnerInput, _Ring
from vidchat.perception.vad import WINDOW

pytestmark = pytest.mark.timeout(60)


def test_ring_keeps_the_last_samples_in_order():
    ring, stream = _Ring(10), np.arange(37, dtype=np.float32)
    for piece in np.split(stream, [3, 4, 19, 25, 26]):  # pieces shorter and longer than the ring
        ring.extend(piece)
    assert ring.end == 37
    np.testing.assert_array_equal(ring.read(27, 37), stream[27:])
    np.testing.assert_array_equal(ring.read(25, 39), [0, 0, *stream[27:], 0, 0])  # gone, not yet


def test_a_48k_voice_in_20ms_pieces_arrives_at_16k_unchanged_in_pitch():
    partner = PartnerInput(8.0, (64, 64), 16000, keep_seconds=4.0)
    t = np.arange(48000 * 2) / 48000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for piece in np.split(tone, 100):
        partner.push_audio(piece, 48000)
    assert partner.now == pytest.approx(2.0, abs=0.01)
    clip = partner.clip(0.5, 1.5)
    spectrum = np.abs(np.fft.rfft(clip.audio))
    assert np.argmax(spectrum) * 16000 / len(clip.audio) == pytest.approx(440, abs=2)
    windows = partner.windows()
    assert len(windows) == int(partner.now * 16000) // WINDOW
    assert windows[-1][0] == pytest.approx(len(windows) * WINDOW / 16000)
    assert partner.windows() == []  # each window is handed out once


def test_a_turn_shows_the_latest_camera_frame_at_each_frame_time():
    partner = PartnerInput(8.0, (32, 32), 16000, keep_seconds=4.0)
    for k in range(30):  # a 30 fps camera, 1 s, 96x64 frames numbered by their red value
        partner.push_frame(np.full((64, 96, 3), k, np.uint8))
        partner.push_audio(np.zeros(16000 // 30 + (k % 3 == 0), np.float32), 16000)
    clip = partner.clip(0.0, 1.0)
    assert clip.frames.shape == (8, 32, 32, 3)  # centre square, resized
    shown = clip.frames[:, 0, 0, 0].tolist()
    assert shown == [int(np.floor(i / 8 * 30)) for i in range(8)]
