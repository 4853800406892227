"""Encode frames + audio into an mp4 (H.264 yuv420p + AAC) that standard players open."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidchat.media.errors import MediaError


def frame_rate_fraction(fps: float) -> Fraction:
    """24 -> 24/1, 29.97 -> 30000/1001: the exact rate a float fps stands for."""
    return Fraction(fps).limit_denominator(1001)


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

    The file appears at `path` only once complete (temp file in the same folder, then
    `os.replace`). Odd frame sides are padded by one edge pixel (yuv420p). `audio=None` writes
    a video-only file.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise MediaError(f"{path}: frames must be [T,H,W,3] with T > 0, got {frames.shape}")
    if frames.dtype != np.uint8:
        raise MediaError(f"{path}: frames must be uint8, got {frames.dtype}")
    frames = _even(frames)
    rate = frame_rate_fraction(fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.mp4", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp_name, mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            vstream = out.add_stream("libx264", rate=rate)
            vstream.width, vstream.height = frames.shape[2], frames.shape[1]
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"crf": str(crf), "preset": "medium"}
            astream = None
            if audio is not None:
                # the "fast" AAC coder: ~6x quicker than the default "twoloop", fine for speech
                astream = out.add_stream(
                    "aac", rate=int(sample_rate), options={"aac_coder": "fast"}
                )
                astream.layout = "mono"
                astream.bit_rate = audio_bitrate
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = i
                frame.time_base = 1 / rate
                out.mux(vstream.encode(frame))
            out.mux(vstream.encode(None))
            if astream is not None:
                wave = np.clip(np.asarray(audio, np.float32).reshape(1, -1), -1.0, 1.0)
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave), format="fltp", layout="mono"
                )
                frame.sample_rate = int(sample_rate)
                frame.pts = 0
                frame.time_base = Fraction(1, int(sample_rate))
                out.mux(astream.encode(frame))
                out.mux(astream.encode(None))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
