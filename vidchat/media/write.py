"""Encode frames + audio into an mp4 (H.264 yuv420p + AAC) that standard players open, and
audio alone into a wav."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from vidchat.media.errors import MediaError
from vidchat.media.stream_writer import ClipStreamWriter, frame_rate_fraction
from vidchat.utils.atomic import atomic_path

__all__ = ["frame_rate_fraction", "write_clip", "write_wav"]


def _even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: replicate the last row/column where one is odd."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frames


def write_clip(
    path: str | Path,
    frames: np.ndarray,
    audio: np.ndarray | None,
    fps: float,
    sample_rate: int,
    crf: int = 18,
    audio_bitrate: int = 96_000,
) -> Path:
    """Write `frames [T,H,W,3] uint8` and mono `audio [S]` float in [-1, 1] to an mp4, atomically.

    The file appears at `path` only once complete (`ClipStreamWriter`: temp file in the same
    folder, then `os.replace`). Odd frame sides are padded by one edge pixel (yuv420p). `audio=None` writes
    a video-only file.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise MediaError(f"{path}: frames must be [T,H,W,3] with T > 0, got {frames.shape}")
    if frames.dtype != np.uint8:
        raise MediaError(f"{path}: frames must be uint8, got {frames.dtype}")
    frames = _even(frames)
    size = (frames.shape[1], frames.shape[2])
    with ClipStreamWriter(
        path, fps, sample_rate, size, crf, audio_bitrate, audio is not None
    ) as out:
        out.write(frames, np.zeros(0, np.float32) if audio is None else audio)
    return path


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Mono `audio [S]` float in [-1, 1] -> 16-bit PCM wav at `path`, atomically (the release's
    cut clips keep their audio in a `.wav` beside a video-only mp4)."""
    path = Path(path)
    audio = np.asarray(audio, np.float64).reshape(-1)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(path, suffix=".wav") as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(sample_rate))
        out.writeframes(pcm.tobytes())
    return path
