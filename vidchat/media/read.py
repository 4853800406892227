"""Decode a clip window with PyAV: frames resampled by timestamp, audio by swresample.

Time alignment: both streams are placed on one clock whose zero is the container's start, so a
video at any fps and audio at any rate stay aligned over long clips. The output video holds
`round(duration * fps)` frames (frame i shows the source frame nearest to `start + i / fps`) and
the audio exactly `round(duration * sample_rate)` samples for that duration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vidchat.media.clip import Clip
from vidchat.media.errors import MediaError
from vidchat.media.frames import Size, crop_resize, parse_size, resize_frame, square_bbox

DEFAULT_SAMPLE_RATE = 16000
_SEEK_MIN_S = 1.0  # windows starting later than this seek instead of decoding from the start
_decode_threads = 0  # FFmpeg threads per video decoder; 0 = FFmpeg's choice (one per core)


def set_decode_threads(count: int) -> None:
    """FFmpeg threads per video decoder in this process (0 = one per core). Decode workers
    set 1: they are the parallelism, and N workers with one thread per core each oversubscribe
    a many-core machine (`vidchat.data.decode`)."""
    global _decode_threads
    if count < 0:
        raise ValueError(f"decode threads must be >= 0, got {count}")
    _decode_threads = count


@dataclass
class MediaInfo:
    """What `probe` reports about a file (None where the stream is absent)."""

    path: str
    duration: float | None
    fps: float | None
    width: int | None
    height: int | None
    num_frames: int | None
    sample_rate: int | None
    channels: int | None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty")


def _open(path: Path) -> av.container.InputContainer:
    _check_file(path)
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(f"{path}: cannot open as audio/video ({exc})") from exc


def _origin(container: av.container.InputContainer) -> float:
    """The clock zero: the container's start time (0 for most mp4s, >0 for MPEG-TS)."""
    start = container.start_time
    return float(start) / av.time_base if start is not None else 0.0


def _stream_duration(stream: av.stream.Stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _native_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def probe(path: str | Path) -> MediaInfo:
    """Stream facts from the header (no decoding). Raises `MediaError` for unreadable files."""
    path = Path(path)
    with _open(path) as container:
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None
        if v is None and a is None:
            raise MediaError(f"{path}: has neither a video nor an audio stream")
        duration = container.duration / av.time_base if container.duration else None
        return MediaInfo(
            path=str(path),
            duration=duration,
            fps=_native_fps(v) if v is not None else None,
            width=v.codec_context.width if v is not None else None,
            height=v.codec_context.height if v is not None else None,
            num_frames=(v.frames or None) if v is not None else None,
            sample_rate=a.codec_context.sample_rate if a is not None else None,
            channels=a.codec_context.channels if a is not None else None,
        )


def _seek(container: av.container.InputContainer, stream: av.stream.Stream, t: float) -> bool:
    """Seek to the keyframe at or before `t` (seconds on the stream's clock) when `t` is far
    enough in to be worth it; True when it sought."""
    if t <= _SEEK_MIN_S:
        return False
    container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
    return True


def _frame_time(frame: av.frame.Frame, origin: float, fallback: float) -> float:
    return float(frame.time) - origin if frame.time is not None else fallback


def _squared(bbox: Sequence[float] | None, width: int, height: int) -> Sequence[float] | None:
    """`bbox` (None = the frame) cut to its centred square when it is not square already."""
    x1, y1, x2, y2 = bbox if bbox is not None else (0.0, 0.0, 1.0, 1.0)
    if not width or not height or abs((x2 - x1) * width - (y2 - y1) * height) < 1.0:
        return bbox
    return square_bbox(bbox, width, height)


def _read_video(
    path: Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    origin: float,
    fps: float | None,
    size: tuple[int, int] | None,
    start: float,
    duration: float | None,
    bbox: Sequence[float] | None,
    keep_aspect: bool = False,
) -> tuple[np.ndarray, float, float]:
    """-> (frames [T,H,W,3] uint8, fps, duration)."""
    if keep_aspect and size is not None and size[0] == size[1]:
        bbox = _squared(bbox, stream.codec_context.width, stream.codec_context.height)

    def convert(frame: av.VideoFrame) -> np.ndarray:
        if bbox is None:
            return resize_frame(frame, size)
        return crop_resize(frame.to_ndarray(format="rgb24"), size, bbox)

    sought = _seek(container, stream, start + origin)
    # Slice threads only: frame threading keeps frames in flight across threads, and a decode
    # that stops before the end of the stream (every window does) has stalled with it in
    # loaded multi-process runs. Slices split each frame, which is all a window needs.
    stream.thread_type = "SLICE"
    stream.codec_context.thread_count = _decode_threads
    window = _Window(path, container, stream, origin, start, duration, convert, sought)
    if fps is None:
        return window.every_frame()
    return window.resampled(float(fps))


@dataclass
class _Window:
    """Decoding one time window `[start, start + duration)` of a video stream."""

    path: Path
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    origin: float
    start: float
    duration: float | None
    convert: Callable[[av.VideoFrame], np.ndarray]
    sought: bool = False  # the container was sought to the window's start

    def __post_init__(self) -> None:
        self.native_fps = _native_fps(self.stream)
        self.period = 1.0 / self.native_fps
        self.end = self.start + self.duration if self.duration is not None else math.inf

    def _decoded(self) -> Iterator[tuple[av.VideoFrame, float]]:
        for index, frame in enumerate(self.container.decode(self.stream)):
            yield frame, _frame_time(frame, self.origin, index * self.period)

    def _frames(self) -> Iterator[tuple[av.VideoFrame, float]]:
        """Decoded frames and their times from the window's start on. A seek that lands past
        the window's start, or on nothing (MPEG-TS seeks by timestamp search and can overshoot
        a stream whose clock starts late), is undone: decoding restarts at the stream's start."""
        frames = self._decoded()
        first = next(frames, None)
        if self.sought and (first is None or first[1] > self.start + self.period / 2):
            self.container.seek(0)
            frames = self._decoded()
            first = next(frames, None)
        if first is not None:
            yield first
            yield from frames

    def every_frame(self) -> tuple[np.ndarray, float, float]:
        """Every source frame inside the window, at the native rate."""
        out: list[np.ndarray] = []
        last_t: float | None = None
        half = self.period / 2
        for frame, t in self._frames():
            last_t = t
            if t < self.start - half:
                continue
            if t >= self.end - half:
                break
            out.append(self.convert(frame))
        if not out:
            raise MediaError(f"{self.path}: no decodable video frames in the requested window")
        _check_truncated(self.path, self.stream, self.origin, last_t, self.period, self.end)
        return np.stack(out), self.native_fps, len(out) / self.native_fps

    def resampled(self, fps: float) -> tuple[np.ndarray, float, float]:
        """The nearest source frame for each output time t_i = start + i / fps, decided while
        streaming: t_i goes to the previous frame when it lies before the midpoint of the two
        frames' times."""
        out: list[np.ndarray] = []
        prev, prev_array, last_t = None, None, None
        n_max = round(self.duration * fps) if self.duration is not None else None
        i = 0
        for frame, t in self._frames():
            if prev is not None:
                midpoint = (last_t + t) / 2
                while (n_max is None or i < n_max) and self.start + i / fps < midpoint:
                    if prev_array is None:
                        prev_array = self.convert(prev)
                    out.append(prev_array)
                    i += 1
            prev, prev_array, last_t = frame, None, t
            if t > self.end + self.period:
                break
        if prev is None:
            raise MediaError(f"{self.path}: no decodable video frames")
        duration = self.duration
        if duration is None:
            duration = max(last_t + self.period - self.start, 0.0)
            n_max = round(duration * fps)
            if n_max == 0:
                raise MediaError(f"{self.path}: no video frames after start={self.start:g}s")
        _check_truncated(self.path, self.stream, self.origin, last_t, self.period, self.end)
        if i < n_max:  # the window runs past the last frame: hold it
            last = prev_array if prev_array is not None else self.convert(prev)
            out += [last] * (n_max - i)
        return np.stack(out[:n_max]), fps, duration


def _check_truncated(
    path: Path,
    stream: av.stream.Stream,
    origin: float,
    last_t: float | None,
    period: float,
    end: float,
) -> None:
    """The header promises more than decoded, and the window wanted it: the file is cut short."""
    declared = _stream_duration(stream)
    if declared is None or last_t is None:
        return
    start_time = float(stream.start_time * stream.time_base) - origin if stream.start_time else 0.0
    declared_end = start_time + declared
    wanted_end = min(end, declared_end)
    if last_t + period < wanted_end - 3 * period:
        raise MediaError(
            f"{path}: truncated or corrupt video: decoding stops at {last_t + period:.2f}s "
            f"but the header says {declared_end:.2f}s"
        )


def _read_audio(
    path: Path,
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    origin: float,
    sample_rate: int,
    start: float,
    duration: float | None,
) -> tuple[np.ndarray, float]:
    """-> (audio [S] float32 mono at sample_rate, duration); S = round(duration * sample_rate)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    first_t: float | None = None
    end = start + duration if duration is not None else math.inf
    _seek(container, stream, start + origin)
    for frame in container.decode(stream):
        if first_t is None:
            first_t = _frame_time(frame, origin, 0.0)
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
        if frame.time is not None and float(frame.time) - origin > end + 0.5:
            break
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().reshape(-1))
    if first_t is None:
        raise MediaError(f"{path}: no decodable audio frames")
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if duration is None:  # audio alone sets the length; the header's duration trims codec padding
        decoded_end = first_t + len(audio) / sample_rate
        declared = _stream_duration(stream)
        if declared is not None and declared > 0:
            decoded_end = min(decoded_end, declared)
        duration = max(decoded_end - start, 0.0)
    n_out = round(duration * sample_rate)
    offset = round((first_t - start) * sample_rate)  # where audio[0] lands in the output
    result = np.zeros(n_out, np.float32)
    src_lo = max(0, -offset)
    dst_lo = max(0, offset)
    count = max(0, min(len(audio) - src_lo, n_out - dst_lo))
    result[dst_lo : dst_lo + count] = audio[src_lo : src_lo + count]
    return np.clip(result, -1.0, 1.0), duration


def read_clip(
    path: str | Path,
    fps: float | None = None,
    size: Size | None = None,
    sample_rate: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    bbox: Sequence[float] | None = None,
    require_audio: bool = True,
    require_video: bool = True,
    keep_aspect: bool = False,
) -> Clip:
    """Decode `[start, start + duration)` of any file PyAV reads.

    fps/size/sample_rate None keep the source's; `size` is an int (square) or (H, W); `bbox`
    is a normalised `[x1, y1, x2, y2]` crop applied before resizing; `keep_aspect` cuts a
    non-square picture (the frame or the bbox) to its centred square when `size` is square. A file without audio
    (when not required) gets silent audio; without video (when not required) gets
    `[0,H,W,3]` frames (H, W from `size`, else 0). A window reaching past the end repeats the
    last frame and pads the audio with silence. Raises `MediaError` naming the file.
    """
    path = Path(path)
    out_size = parse_size(size)
    if duration is not None and duration <= 0:
        raise MediaError(f"{path}: duration must be positive, got {duration}")
    start = max(float(start), 0.0)
    try:
        with _open(path) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            if video is None and audio is None:
                raise MediaError(f"{path}: has neither a video nor an audio stream")
            if video is None and require_video:
                raise MediaError(f"{path}: has no video stream")
            if audio is None and require_audio:
                raise MediaError(f"{path}: has no audio stream")
            origin = _origin(container)
            if video is not None:
                frames, out_fps, duration = _read_video(
                    path,
                    container,
                    video,
                    origin,
                    fps,
                    out_size,
                    start,
                    duration,
                    bbox,
                    keep_aspect,
                )
            sr = int(sample_rate or (audio.codec_context.sample_rate if audio else 0))
            sr = sr or DEFAULT_SAMPLE_RATE
            if audio is not None:
                if video is not None:
                    container.seek(0)
                wave, duration = _read_audio(path, container, audio, origin, sr, start, duration)
            else:
                wave = np.zeros(round(duration * sr), np.float32)
            if video is None:
                out_fps = float(fps or 0.0)
                h, w = out_size or (0, 0)
                frames = np.zeros((0, h, w, 3), np.uint8)
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt or unsupported media ({exc})") from exc
    return Clip(frames=frames, audio=wave, fps=out_fps, sample_rate=sr, duration=float(duration))
