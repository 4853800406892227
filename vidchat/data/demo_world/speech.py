"""Speech-like audio: voiced syllables (harmonics at the speaker's f0 shaped by formants).

Each syllable is a glottal harmonic series whose amplitudes follow 3 formant resonances of a
vowel, with a consonant noise onset and a smooth loudness envelope; syllables group into words
separated by pauses. Emotion moves the pitch level and contour (happy high and rising, sad low
and falling) and the tempo and loudness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidchat.data.demo_world.identities import Identity
from vidchat.perception.signal import frame_rms

EMOTIONS = ("happy", "neutral", "sad")
# Vowel formants (F1, F2, F3) in Hz for an adult male tract; bandwidths ~80/100/140 Hz.
_VOWELS = {
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (270.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (300.0, 870.0, 2240.0),
}
_BANDWIDTHS = (80.0, 100.0, 140.0)
_FORMANT_GAINS = (1.0, 0.6, 0.3)
# emotion -> (pitch factor, pitch slope over a syllable, tempo factor, loudness)
_PROSODY = {
    "happy": (1.2, 0.12, 0.9, 1.0),
    "neutral": (1.0, -0.03, 1.0, 0.85),
    "sad": (0.85, -0.12, 1.25, 0.65),
}


@dataclass
class Syllable:
    start: float  # seconds from the start of the turn
    end: float
    vowel: str
    f0: float  # mean pitch, Hz


def _envelope(n: int, sr: int, attack: float = 0.03, release: float = 0.06) -> np.ndarray:
    """Raised-cosine attack and release with a flat middle -> [n]."""
    env = np.ones(n, np.float64)
    a, r = min(int(attack * sr), n // 2), min(int(release * sr), n // 2)
    if a:
        env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)
    if r:
        env[n - r :] = 0.5 + 0.5 * np.cos(np.pi * np.arange(r) / r)
    return env


def _voiced(
    n: int, sr: int, f0_start: float, f0_end: float, vowel: str, formant_scale: float
) -> np.ndarray:
    """One vowel: harmonics of a gliding f0, weighted by formant resonances -> [n]."""
    f0 = np.linspace(f0_start, f0_end, n)
    phase = 2 * np.pi * np.cumsum(f0) / sr  # [n]
    mean_f0 = 0.5 * (f0_start + f0_end)
    harmonics = np.arange(1, int(4000 / mean_f0) + 1)  # [K], below 4 kHz
    freqs = harmonics * mean_f0
    weight = np.zeros(len(harmonics))
    for formant, bw, gain in zip(_VOWELS[vowel], _BANDWIDTHS, _FORMANT_GAINS):
        weight += gain / (1.0 + ((freqs - formant * formant_scale) / bw) ** 2)
    weight *= 1.0 / np.sqrt(harmonics)  # glottal spectral tilt
    wave = (weight[:, None] * np.sin(harmonics[:, None] * phase[None, :])).sum(0)
    return wave / (np.abs(wave).max() + 1e-9)


def synthesize_turn(
    rng: np.random.Generator, identity: Identity, emotion: str, seconds: float, sample_rate: int
) -> tuple[np.ndarray, list[Syllable]]:
    """A turn of speech `seconds` long -> (audio [S] float32 in [-1, 1], syllables)."""
    pitch, slope, tempo, loudness = _PROSODY[emotion]
    n_total = round(seconds * sample_rate)
    audio = np.zeros(n_total, np.float64)
    syllables: list[Syllable] = []
    t = rng.uniform(0.12, 0.25)  # leading silence
    end_limit = seconds - 0.2
    while True:
        n_syll = int(rng.integers(1, 4))  # a word of 1-3 syllables
        for s in range(n_syll):
            length = rng.uniform(0.14, 0.26) * tempo
            if t + length > end_limit:
                break
            vowel = str(rng.choice(list(_VOWELS)))
            f0 = identity.f0 * pitch * (1.0 + rng.uniform(-0.06, 0.06) - 0.04 * t / seconds)
            f0_start, f0_end = f0 * (1 - slope / 2), f0 * (1 + slope / 2)
            lo, n = round(t * sample_rate), round(length * sample_rate)
            stress = rng.uniform(0.65, 1.0) * loudness
            wave = _voiced(n, sample_rate, f0_start, f0_end, vowel, identity.formant_scale)
            audio[lo : lo + n] += 0.6 * stress * wave * _envelope(n, sample_rate)
            if s == 0 or rng.random() < 0.5:  # consonant onset: a short noise burst
                nb = round(0.025 * sample_rate)
                burst = np.diff(rng.standard_normal(nb + 1)) * _envelope(
                    nb, sample_rate, 0.005, 0.015
                )
                b_lo = max(lo - nb // 2, 0)
                audio[b_lo : b_lo + nb] += 0.04 * stress * burst[: n_total - b_lo]
            syllables.append(Syllable(t, t + length, vowel, float(0.5 * (f0_start + f0_end))))
            t += length + rng.uniform(0.03, 0.06)  # gap inside the word
        else:
            t += rng.uniform(0.12, 0.3)  # pause between words
            if t < end_limit - 0.14:
                continue
        break
    audio += 0.002 * rng.standard_normal(n_total)  # room noise floor
    return np.clip(audio, -1, 1).astype(np.float32), syllables


# RMS loudness of `audio [S]` for each video frame -> [T]: frame i covers
# `[i / fps, i / fps + window)`, window defaulting to `1 / fps`. The demo mouth follows this
# envelope at the render rate (24 fps); for frames read at a lower fps (which show the instant
# at i / fps), pass the render period, `window=1/24`, to compare like with like.
audio_envelope = frame_rms

NOISE_FLOOR = 0.004  # audio RMS treated as silence when driving the mouth


def mouth_from_envelope(env: np.ndarray) -> np.ndarray:
    """A talker's mouth opening [T] in [0, 1] from their turn's loudness envelope [T]: shut at
    the noise floor, fully open at the turn's 95th-percentile voiced loudness."""
    voiced = env > 2 * NOISE_FLOOR
    loud = np.percentile(env[voiced], 95) if voiced.any() else 1.0
    return np.clip((env - NOISE_FLOOR) / (loud - NOISE_FLOOR), 0.0, 1.0)
