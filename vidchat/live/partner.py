"""What the live partner has sent so far: their voice at the responder's sample rate and at the
VAD's, and their camera at the responder's frame size, on the microphone's clock.

The microphone's clock (samples received / rate) is the one time base of the input side: a
camera frame is stamped with the microphone time at which it arrived, and a turn `[t0, t1)` is
cut as the audio between those times and, for each of the responder's frame times in it, the
latest camera frame at or before that time (a camera that sends nothing gives grey frames).
Only the last `keep_seconds` are kept.
"""

from __future__ import annotations

import threading
from collections import deque

import av
import numpy as np

from vidchat.media import Clip
from vidchat.media.frames import centre_square, crop_resize
from vidchat.perception.vad import VAD_RATE, WINDOW

GREY = 128


class _Resampler:
    """Mono float32 at any rate -> `rate`, streaming (libswresample keeps the filter's state
    from one piece to the next, so chunked input gives no clicks at the joins)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.source_rate: int | None = None
        self._swr: av.AudioResampler | None = None

    def __call__(self, samples: np.ndarray, source_rate: int) -> np.ndarray:
        if source_rate == self.rate:
            return samples
        if source_rate != self.source_rate:
            self.source_rate = source_rate
            self._swr = av.AudioResampler(format="flt", layout="mono", rate=self.rate)
        frame = av.AudioFrame.from_ndarray(samples[None], format="flt", layout="mono")
        frame.sample_rate = source_rate
        out = [f.to_ndarray().reshape(-1) for f in self._swr.resample(frame)]  # type: ignore[union-attr]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class _Ring:
    """The last `capacity` samples of a stream, addressed by absolute sample index (sample i
    lives at `data[i % capacity]`: a push copies only itself)."""

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros(capacity, np.float32)
        self.end = 0  # absolute index one past the newest sample

    def extend(self, samples: np.ndarray) -> None:
        cap, n = len(self.data), len(samples)
        keep = samples[-cap:]
        first = self.end + n - len(keep)  # absolute index of keep[0]
        self.data[(first + np.arange(len(keep))) % cap] = keep
        self.end += n

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples `[start, stop)`; what has left the ring (or not come yet) reads as 0."""
        out = np.zeros(max(0, stop - start), np.float32)
        lo, hi = max(start, self.end - len(self.data)), min(stop, self.end)
        if hi > lo:
            out[lo - start : hi - start] = self.data[np.arange(lo, hi) % len(self.data)]
        return out


class PartnerInput:
    """Thread-safe buffers of the partner's voice and camera (see the module docstring)."""

    def __init__(
        self, fps: float, frame_size: tuple[int, int], sample_rate: int, keep_seconds: float
    ) -> None:
        self.fps, self.frame_size, self.sample_rate = fps, frame_size, sample_rate
        self._lock = threading.Lock()
        self._audio = _Ring(int(keep_seconds * sample_rate))
        self._vad = _Ring(int(keep_seconds * VAD_RATE))
        self._to_model, self._to_vad = _Resampler(sample_rate), _Resampler(VAD_RATE)
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=int(keep_seconds * 60) + 1)
        self._vad_read = 0  # next VAD sample that no window has covered yet

    @property
    def now(self) -> float:
        """The microphone clock: seconds of audio received."""
        return self._audio.end / self.sample_rate

    def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        mono = np.asarray(samples, np.float32).reshape(-1)
        with self._lock:
            self._audio.extend(self._to_model(mono, int(sample_rate)))
            self._vad.extend(self._to_vad(mono, int(sample_rate)))

    def push_frame(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        image = crop_resize(np.asarray(frame, np.uint8), self.frame_size, centre_square(w, h))
        with self._lock:
            self._frames.append((self.now, image))

    def windows(self) -> list[tuple[float, np.ndarray]]:
        """The VAD windows completed since the last call: `(end time, [WINDOW] samples)`."""
        out = []
        with self._lock:
            while self._vad_read + WINDOW <= self._vad.end:
                start = max(self._vad_read, self._vad.end - len(self._vad.data))
                out.append(((start + WINDOW) / VAD_RATE, self._vad.read(start, start + WINDOW)))
                self._vad_read = start + WINDOW
        return out

    def clip(self, start: float, stop: float) -> Clip:
        """The partner between microphone times `[start, stop)` at the responder's rates."""
        start = max(0.0, start)
        n = max(1, int(round((stop - start) * self.fps)))
        stop = start + n / self.fps
        sr = self.sample_rate
        with self._lock:
            audio = self._audio.read(int(round(start * sr)), int(round(stop * sr)))
            frames = list(self._frames)
        h, w = self.frame_size
        out = np.full((n, h, w, 3), GREY, np.uint8)
        times = [t for t, _ in frames]
        for i in range(n):
            k = np.searchsorted(times, start + i / self.fps, side="right") - 1
            if k >= 0 or frames:
                out[i] = frames[max(k, 0)][1]
        return Clip(out, audio, float(self.fps), sr, n / self.fps)
