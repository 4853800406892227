"""Lip sync without SyncNet: mouth opening per frame against the audio loudness envelope.

The score is the best Pearson correlation over lags of ±max_lag frames; the lag at which it
peaks tells how far the audio is shifted from the picture. The mouth-opening extractor is a
plain callable `[T,H,W,3] uint8 -> [T]` (NaN where unknown): dlib landmarks for real faces,
a pixel measure for the cartoon demo world.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vidchat.errors import VidchatError
from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.frames import check_frames
from vidchat.perception.signal import frame_rms, pearson

MouthOpening = Callable[[np.ndarray], np.ndarray]


def audio_envelope(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS of `audio [S]` within each video frame's time span -> [n_frames] (0 past the end)."""
    return frame_rms(audio, sample_rate, fps, n_frames)


def lagged_correlation(
    video_signal: np.ndarray, audio_signal: np.ndarray, max_lag: int
) -> dict[int, float]:
    """Pearson r for each lag in [-max_lag, max_lag].

    Lag k pairs video frame t with audio frame t + k: a positive k means the audio comes
    k frames after the picture. Only overlapping frames count, and a lag whose overlap is under
    half the clip (or under 4 frames) gives NaN: a few frames correlate by chance.
    """
    v, a = np.asarray(video_signal, float), np.asarray(audio_signal, float)
    n = min(len(v), len(a))
    min_overlap = max(4, (n + 1) // 2)
    out = {}
    for k in range(-max_lag, max_lag + 1):
        if n - abs(k) < min_overlap:
            out[k] = float("nan")
        elif k >= 0:
            out[k] = pearson(v[: n - k], a[k:n])
        else:
            out[k] = pearson(v[-k:n], a[: n + k])
    return out


def lip_sync(
    frames: np.ndarray,
    audio: np.ndarray,
    fps: float,
    sample_rate: int,
    max_lag: int = 5,
    mouth_opening: MouthOpening | None = None,
    min_face_rate: float = 0.5,
    min_frames: int = 8,
) -> MetricResult:
    """Best correlation of mouth opening and audio RMS over ±max_lag frames.

    frames: [T,H,W,3] uint8 at `fps`; audio: [S] float at `sample_rate`. Details: `lag`
    (frames, positive = audio late), `r_at_zero_lag`, `face_rate` (frames with a mouth).
    Unavailable when the clip is shorter than `min_frames` or too few frames have a mouth.
    """
    frames = check_frames(frames, "generated frames")
    if mouth_opening is None:
        from vidchat.perception.faces import dlib_mouth_opening, faces_unavailable_reason

        reason = faces_unavailable_reason()
        if reason:
            return MetricResult.unavailable("lip_sync", reason)
        mouth_opening = dlib_mouth_opening
    if len(frames) < min_frames:  # a correlation over a handful of frames is chance
        return MetricResult.unavailable(
            "lip_sync", f"only {len(frames)} frames (need {min_frames} for a correlation)"
        )
    opening = np.asarray(mouth_opening(frames), dtype=np.float64)
    if opening.shape != (len(frames),):
        raise VidchatError(
            f"mouth-opening extractor returned shape {opening.shape}, expected ({len(frames)},)"
        )
    face_rate = float(np.isfinite(opening).mean())
    if face_rate < min_face_rate:
        return MetricResult.unavailable(
            "lip_sync",
            f"a mouth was found in only {face_rate:.0%} of frames (need {min_face_rate:.0%})",
        )
    env = audio_envelope(audio, sample_rate, fps, len(frames))
    by_lag = lagged_correlation(opening, env, max_lag)
    finite = {k: r for k, r in by_lag.items() if np.isfinite(r)}
    if not finite:
        return MetricResult.unavailable("lip_sync", "mouth opening or audio envelope is constant")
    lag = max(finite, key=lambda k: (finite[k], -abs(k)))
    return MetricResult(
        "lip_sync",
        finite[lag],
        {"lag": int(lag), "r_at_zero_lag": by_lag[0], "face_rate": face_rate, "max_lag": max_lag},
    )
