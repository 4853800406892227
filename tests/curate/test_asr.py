"""ASR scores on known answers: real speech, synthetic demo vowels, noise."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")


def test_asr_confidence_tells_real_speech_from_vowels_and_noise():
    from tests.real_media import librivox_wavs
    from vidchat.curate.asr import turn_scores
    from vidchat.data.demo_world.identities import make_identities
    from vidchat.data.demo_world.speech import synthesize_turn
    from vidchat.media import read_clip

    path, _ = librivox_wavs()[0]
    speech = read_clip(path, sample_rate=16000, require_video=False).audio
    rng = np.random.default_rng(0)
    vowels, _ = synthesize_turn(rng, make_identities(8)[0], "happy", 3.0, 16000)
    noise = 0.05 * rng.standard_normal(3 * 16000).astype(np.float32)
    real, demo, hiss = turn_scores(speech), turn_scores(vowels), turn_scores(noise)
    assert real["asr_conf"] > -1.0 > demo["asr_conf"]  # the paper's SFT threshold between them
    assert real["no_speech"] < 0.5 and hiss["no_speech"] == 1.0
