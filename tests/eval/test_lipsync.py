"""Lip sync: a shifted audio track is found at the right lag and scores lower."""

import numpy as np
import pytest

from vidchat.eval.metrics.lipsync import audio_envelope, lagged_correlation, lip_sync

FPS, SR = 25, 16000


def _talking(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic talker: a dark mouth whose height follows a random syllable rhythm, and a
    voice whose loudness follows the same rhythm. Returns ([n,32,32,3] frames, opening [n])."""
    rng = np.random.default_rng(seed)
    opening = np.convolve(rng.random(n + 4), np.ones(4) / 4, mode="valid")[:n]  # [n] in 0..1
    frames = np.full((n, 32, 32, 3), 200, np.uint8)
    for t, o in enumerate(opening):
        h = int(round(1 + 8 * o))
        frames[t, 20 : 20 + h, 10:22] = 20
    return frames, opening


def _voice(opening: np.ndarray, shift_frames: int = 0, seed: int = 1) -> np.ndarray:
    """Noise carrier at the loudness of `opening`, delayed by `shift_frames` (negative: early)."""
    hop = SR // FPS
    gain = np.repeat(opening, hop)
    audio = np.random.default_rng(seed).normal(0, 0.3, len(gain)) * gain
    shift = shift_frames * hop
    audio = np.concatenate([np.zeros(shift), audio[:-shift]]) if shift > 0 else audio
    audio = np.concatenate([audio[-shift:], np.zeros(-shift)]) if shift < 0 else audio
    return audio.astype(np.float32)


def dark_rows(frames: np.ndarray) -> np.ndarray:
    """Pixel mouth opening: dark pixels per frame (a stand-in for the demo world's measure)."""
    return (frames.mean(axis=3) < 100).sum(axis=(1, 2)).astype(float)


def test_envelope_is_the_rms_per_frame():
    audio = np.concatenate([np.full(640, 0.5), np.full(640, -0.25)]).astype(np.float32)
    assert audio_envelope(audio, SR, FPS, 3) == pytest.approx([0.5, 0.25, 0.0])


def test_lag_convention_positive_means_audio_late():
    x = np.random.default_rng(0).random(50)
    late = np.concatenate([np.zeros(3), x[:-3]])
    by_lag = lagged_correlation(x, late, 5)
    assert max(by_lag, key=by_lag.get) == 3 and by_lag[3] == pytest.approx(1.0)


def test_aligned_speech_scores_high_at_zero_lag():
    frames, opening = _talking()
    res = lip_sync(frames, _voice(opening), FPS, SR, max_lag=5, mouth_opening=dark_rows)
    assert res.value > 0.9 and res.details["lag"] == 0 and res.details["face_rate"] == 1.0


@pytest.mark.parametrize("shift", [3, -4])
def test_shifted_audio_reports_the_shift_and_lowers_the_zero_lag_score(shift):
    frames, opening = _talking()
    aligned = lip_sync(frames, _voice(opening), FPS, SR, max_lag=6, mouth_opening=dark_rows)
    shifted = lip_sync(frames, _voice(opening, shift), FPS, SR, max_lag=6, mouth_opening=dark_rows)
    assert shifted.details["lag"] == shift
    assert shifted.details["r_at_zero_lag"] < aligned.details["r_at_zero_lag"] - 0.3


def test_shift_beyond_the_search_window_lowers_the_score():
    frames, opening = _talking()
    aligned = lip_sync(frames, _voice(opening), FPS, SR, max_lag=3, mouth_opening=dark_rows)
    far = lip_sync(frames, _voice(opening, 12), FPS, SR, max_lag=3, mouth_opening=dark_rows)
    assert far.value < aligned.value - 0.4


def test_too_few_mouths_is_unavailable():
    frames, _ = _talking(20)
    with pytest.warns(UserWarning, match="lip_sync"):
        res = lip_sync(
            frames,
            np.zeros(SR, np.float32),
            FPS,
            SR,
            mouth_opening=lambda f: np.full(len(f), np.nan),
        )
    assert not res.available and "0%" in res.reason


@pytest.mark.slow
def test_real_face_landmarks_find_the_shift_of_a_derived_voice(carphone_frames):
    """Carphone clip: dlib mouth landmarks against a voice whose loudness is derived from them."""
    pytest.importorskip("dlib")
    from vidchat.perception.faces import dlib_mouth_opening

    frames = carphone_frames
    fps = 30000 / 1001
    opening = dlib_mouth_opening(frames)
    assert np.isfinite(opening).mean() > 0.9
    assert 0.02 < np.nanmean(opening) < 0.5 and np.nanstd(opening) > 0.01  # a mouth that moves
    filled = np.where(np.isfinite(opening), opening, np.nanmean(opening))
    hop = SR / fps
    gain = np.interp(np.arange(int(len(frames) * hop)) / hop, np.arange(len(frames)), filled)
    voice = (np.random.default_rng(0).normal(0, 0.5, len(gain)) * gain).astype(np.float32)

    aligned = lip_sync(frames, voice, fps, SR, max_lag=8)  # the real dlib extractor
    assert aligned.details["lag"] == 0 and aligned.value > 0.8

    cached = lambda f: opening  # noqa: E731 - same frames, skip re-running dlib
    delay = int(round(5 * hop))
    late = np.concatenate([np.zeros(delay, np.float32), voice[:-delay]])
    shifted = lip_sync(frames, late, fps, SR, max_lag=8, mouth_opening=cached)
    assert shifted.details["lag"] == 5
    assert shifted.details["r_at_zero_lag"] < aligned.details["r_at_zero_lag"] - 0.2


def test_short_clips_only_use_lags_with_enough_overlap():
    from vidchat.eval.metrics.lipsync import lagged_correlation

    rng = np.random.default_rng(0)
    by_lag = lagged_correlation(rng.normal(size=8), rng.normal(size=8), max_lag=5)
    assert set(by_lag) == set(range(-5, 6))
    assert np.isnan(by_lag[5]) and np.isnan(by_lag[-5])  # 3 overlapping frames of 8
    assert np.isfinite(by_lag[4]) and np.isfinite(by_lag[0])  # 4 of 8: half the clip


def test_too_short_a_clip_is_unavailable_not_a_chance_correlation():
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    result = lip_sync(
        frames,
        np.zeros(8000, np.float32),
        8.0,
        16000,
        mouth_opening=lambda f: np.arange(len(f), dtype=float),
    )
    assert not result.available and "only 4 frames" in result.reason
