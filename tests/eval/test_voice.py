"""Voice metrics on real speech: speaker similarity, DNSMOS, Silero VAD, PocketSphinx WER."""

import numpy as np
import pytest

from vidchat.eval.metrics.asr import asr_wer, normalize_words, word_error_rate

SR = 16000


def _noise(seconds: float, level: float = 0.1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, level, int(seconds * SR)).astype(np.float32)


def test_word_error_rate_known_values():
    assert word_error_rate("The cat sat.", "the cat sat") == 0.0
    assert word_error_rate("a b c d", "a x c") == pytest.approx(2 / 4)  # 1 sub + 1 del
    assert word_error_rate("a b", "a b c d") == pytest.approx(1.0)  # 2 insertions
    assert normalize_words("Don't STOP, now!") == ["don't", "stop", "now"]


@pytest.mark.slow
def test_same_reader_is_more_similar_than_other_speakers(librivox, pyannote_speakers):
    pytest.importorskip("resemblyzer")
    from vidchat.eval.metrics.voice import speaker_similarity

    (a, sr_a, _), (b, sr_b, _) = librivox[0], librivox[2]
    assert sr_a == sr_b == SR
    same = speaker_similarity(a, b, SR).value
    (s1, x1), (s2, x2) = sorted(pyannote_speakers.items())
    half = len(x1) // 2
    same_conv = speaker_similarity(x1[:half], x1[half:], SR).value  # measured 0.93
    cross_conv = speaker_similarity(x1, x2, SR).value  # 0.84: same room and microphone
    reader_vs_other = speaker_similarity(a, x1, SR).value  # 0.43
    assert same > 0.85 and same_conv > 0.85  # 0.93 and 0.93
    assert reader_vs_other < same - 0.3
    assert cross_conv < same_conv - 0.05


@pytest.mark.slow
def test_dnsmos_rates_clean_speech_above_noise(librivox):
    pytest.importorskip("speechmos")
    from vidchat.eval.metrics.dnsmos import dnsmos

    speech = librivox[3][0]
    clean = dnsmos(speech, SR)
    noisy = dnsmos(np.clip(speech + _noise(len(speech) / SR, 0.05), -1, 1), SR)
    noise = dnsmos(_noise(3.0), SR)
    assert 2.5 < clean.value <= 5.0 and noise.value < 2.0
    assert noisy.details["bak"] < clean.details["bak"] - 0.5
    # resampling path: 48 kHz input gives about the same score
    up = np.repeat(speech, 3)  # crude 48 kHz copy
    assert abs(dnsmos(up, 48000).value - clean.value) < 0.5


@pytest.mark.slow
def test_silero_vad_finds_speech_not_noise_or_silence(librivox):
    pytest.importorskip("silero_vad")
    pytest.importorskip("onnxruntime")
    from vidchat.eval.metrics.vad import voice_activity

    speech = librivox[1][0]
    assert voice_activity(speech, SR).value > 0.6
    assert voice_activity(_noise(3.0), SR).value < 0.1
    assert voice_activity(np.zeros(3 * SR, np.float32), SR).value == 0.0
    # 2 s of speech followed by 2 s of silence: about half
    two = np.concatenate([speech[: 2 * SR], np.zeros(2 * SR, np.float32)])
    assert 0.25 < voice_activity(two, SR).value < 0.6


@pytest.mark.slow
def test_pocketsphinx_transcribes_a_librivox_clip(librivox):
    pytest.importorskip("pocketsphinx")
    audio, sr, text = librivox[-1]  # "he might even have been made amiable himself"
    res = asr_wer(audio, sr, text)
    assert res.value < 0.4, res.details["transcript"]
    other_text = librivox[0][2]
    assert word_error_rate(other_text, res.details["transcript"]) > 0.8
    assert asr_wer(audio, sr, None).details["transcript"] == res.details["transcript"]
