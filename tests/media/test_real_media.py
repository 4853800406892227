"""The real talking-face clip decodes like any other file."""

from __future__ import annotations

import numpy as np
import pytest

from tests.real_media import carphone_path
from vidchat.media import MediaError, read_clip


@pytest.fixture(scope="module")
def carphone():
    return carphone_path()


def test_read_real_carphone_clip(carphone):
    with pytest.raises(MediaError, match="carphone_pristine.mp4.*no audio"):
        read_clip(carphone)
    clip = read_clip(carphone, require_audio=False)
    assert clip.frames.shape == (120, 144, 176, 3)
    assert clip.fps == pytest.approx(30000 / 1001)
    small = read_clip(carphone, fps=8, size=32, sample_rate=16000, require_audio=False)
    assert small.frames.shape == (32, 32, 32, 3)  # round(4.004 s * 8)
    assert len(small.audio) == round(small.duration * 16000)
    # a real picture, not a blank: plenty of texture
    assert small.frames.std() > 20 and np.ptp(small.frames[0]) > 100


def test_read_real_speech_wavs_resampled():
    """Audio-only containers (WAV) read with require_video=False, resampled without drift."""
    from tests.real_media import pyannote_sample

    wav, rttm = pyannote_sample()
    native = read_clip(wav, require_video=False)
    assert native.sample_rate == 16000 and native.duration == pytest.approx(30.0, abs=0.1)
    assert native.frames.shape[0] == 0 and np.abs(native.audio).max() > 0.1
    low = read_clip(wav, sample_rate=8000, require_video=False, start=10.0, duration=5.0)
    assert len(low.audio) == 40000
    # the window really starts at 10 s: same loudness profile as the native read there
    seg = native.audio[160000:240000].reshape(-1, 1600)
    rms_native = np.sqrt((seg**2).mean(1))
    rms_low = np.sqrt((low.audio.reshape(-1, 800) ** 2).mean(1))
    assert np.corrcoef(rms_native, rms_low)[0, 1] > 0.95
    assert "SPEAKER" in rttm.read_text()


@pytest.mark.slow
def test_librivox_wavs_have_transcripts():
    from tests.real_media import librivox_wavs

    pairs = librivox_wavs()
    assert len(pairs) >= 3
    wav, text = pairs[0]
    clip = read_clip(wav, require_video=False)
    assert clip.sample_rate == 16000 and 2.0 < clip.duration < 10.0 and len(text.split()) >= 3
