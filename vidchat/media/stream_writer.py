"""`ClipStreamWriter`: write an mp4 (H.264 + AAC) piece by piece, as a streaming generator yields it.

The file appears at its final name only when the writer closes without an error (temp file in the
same folder, then `os.replace`); after an exception nothing is left under the final name, so a
crashed or interrupted run never leaves a half-written response behind.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from vidchat.media.errors import MediaError
from vidchat.utils.atomic import atomic_path, remove_stale_temps_of


def frame_rate_fraction(fps: float) -> Fraction:
    """24 -> 24/1, 29.97 -> 30000/1001: the exact rate a float fps stands for."""
    return Fraction(fps).limit_denominator(1001)


class ClipStreamWriter:
    """Append frames `[t,H,W,3] uint8` and mono audio `[s]` float32 to one mp4, atomically.

    Use as a context manager::

        with ClipStreamWriter(path, fps=8, sample_rate=16000, size=(64, 64)) as out:
            for chunk in chunks:
                out.write(chunk.frames, chunk.audio)
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        sample_rate: int,
        size: tuple[int, int],
        crf: int = 18,
        audio_bitrate: int = 96_000,
        with_audio: bool = True,
    ) -> None:
        h, w = size
        if h % 2 or w % 2:
            raise MediaError(f"{path}: frame size {size} must be even for H.264 (yuv420p)")
        self.path = Path(path)
        self.size = (int(h), int(w))
        self.sample_rate = int(sample_rate)
        self._rate = frame_rate_fraction(fps)
        remove_stale_temps_of(self.path)  # a killed run's `.{name}.*.tmp.mp4` (kill -9 of infer.py)
        self._atomic = atomic_path(self.path, suffix=".tmp.mp4")
        tmp = self._atomic.__enter__()
        self._out = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._video = self._out.add_stream("libx264", rate=self._rate)
        self._video.width, self._video.height = w, h
        self._video.pix_fmt = "yuv420p"
        # mbtree off: x264's macroblock tree gave different bytes for the same frames once the
        # process had decoded video (floating-point state), and reproducible files matter more
        # (a resumed `cut` equals an uninterrupted one; the demo world) than 0.6% of bitrate
        self._video.options = {"crf": str(crf), "preset": "medium", "x264-params": "mbtree=0"}
        self._audio = None
        if with_audio:
            # the "fast" AAC coder: ~6x quicker than the default "twoloop", fine for speech
            self._audio = self._out.add_stream(
                "aac", rate=self.sample_rate, options={"aac_coder": "fast"}
            )
            self._audio.layout = "mono"
            self._audio.bit_rate = audio_bitrate
        self.frames_written = 0
        self.samples_written = 0

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        """Append `frames [t,H,W,3] uint8` and `audio [s]` float32 (either may be empty)."""
        frames = np.asarray(frames)
        if frames.size and (frames.ndim != 4 or tuple(frames.shape[1:]) != (*self.size, 3)):
            raise MediaError(
                f"{self.path}: frames must be [t,{self.size[0]},{self.size[1]},3], got {frames.shape}"
            )
        for image in frames:
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(image, dtype=np.uint8), format="rgb24"
            )
            frame.pts = self.frames_written
            frame.time_base = 1 / self._rate
            self._out.mux(self._video.encode(frame))
            self.frames_written += 1
        wave = np.clip(np.asarray(audio, np.float32).reshape(1, -1), -1.0, 1.0)
        if wave.shape[1] and self._audio is None:
            raise MediaError(f"{self.path}: this writer was opened without an audio stream")
        if wave.shape[1]:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(wave), format="fltp", layout="mono"
            )
            frame.sample_rate = self.sample_rate
            frame.pts = self.samples_written
            frame.time_base = Fraction(1, self.sample_rate)
            self._out.mux(self._audio.encode(frame))
            self.samples_written += wave.shape[1]

    def close(self) -> Path:
        """Flush the encoders and move the file to its final name."""
        self._out.mux(self._video.encode(None))
        if self._audio is not None:
            self._out.mux(self._audio.encode(None))
        self._out.close()
        if self.frames_written == 0:
            self.abort()
            raise MediaError(f"{self.path}: nothing was written")
        self._atomic.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop the partial file; nothing appears under the final name."""
        try:
            self._out.close()
        except Exception:  # noqa: BLE001 - the container may be half-initialised; it is discarded anyway
            pass
        error = MediaError(f"{self.path}: writing was aborted")
        self._atomic.__exit__(MediaError, error, None)

    def __enter__(self) -> ClipStreamWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
