"""Any container PyAV reads: MPEG-TS (whose clock starts late, ~1.4 s), Matroska, QuickTime, WebM
and a variable-frame-rate mp4 decode whole and in windows, and a window equals the same slice
of the whole clip. Before the seek check, a window of a `.ts` decoded nothing ("no decodable
video frames"): its seek overshot and nothing noticed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_media_io import _clicks, _ramp_frames

from vidchat.media import read_clip, write_clip

pytestmark = pytest.mark.timeout(120)

FPS, SR, SECONDS, EVERY = 8, 16000, 12, 1.0


def _remux(src: Path, dst: Path, fmt: str, offset: float = 0.0) -> Path:
    """The same packets in another container (no re-encoding), their clock moved by `offset`
    seconds (an MPEG-TS from a broadcast starts at 1.4 s or later)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                shift = round(offset / packet.time_base)
                packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


def _lag_ms(audio: np.ndarray, reference: np.ndarray) -> float:
    """How late `audio` runs against `reference` (ms), from their 1 ms energy envelopes."""
    n = min(len(audio), len(reference)) // 16 * 16
    env = [np.abs(x[:n]).reshape(-1, 16).mean(1) for x in (audio, reference)]
    corr = np.correlate(env[0] - env[0].mean(), env[1] - env[1].mean(), "full")
    return float(np.argmax(corr) - (len(env[1]) - 1))


def _encode(
    dst: Path,
    frames: np.ndarray,
    audio: np.ndarray,
    fmt: str,
    video_codec: str,
    audio_codec: str,
    times: np.ndarray | None = None,
) -> Path:
    """Encode with PyAV; `times` (seconds per frame) makes the frame rate variable."""
    with av.open(str(dst), "w", format=fmt) as out:
        v = out.add_stream(video_codec, rate=FPS)
        v.width, v.height, v.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        v.time_base = Fraction(1, 1000)
        v.codec_context.time_base = Fraction(1, 1000)  # 1/FPS would merge frames 1/16 s apart
        v.codec_context.max_b_frames = 0  # irregular times: decode order = presentation order
        a = out.add_stream(audio_codec, rate=48000 if audio_codec == "libopus" else SR)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            t = i / FPS if times is None else times[i]
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        resampler = av.AudioResampler(
            format=a.format.name, layout="mono", rate=a.rate, frame_size=a.codec_context.frame_size
        )
        pcm = av.AudioFrame.from_ndarray(audio[None], format="flt", layout="mono")
        pcm.sample_rate, pcm.pts = SR, 0
        for chunk in resampler.resample(pcm) + resampler.resample(None):
            out.mux(a.encode(chunk))
        out.mux(a.encode(None))
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("containers")
    frames, audio = _ramp_frames(SECONDS * FPS), _clicks(SECONDS, SR, EVERY)
    mp4 = write_clip(root / "clip.mp4", frames, audio, fps=FPS, sample_rate=SR)
    out = {"mp4": Path(mp4)}
    for ext, fmt, offset in (("ts", "mpegts", 1.4), ("mkv", "matroska", 0), ("mov", "mov", 0)):
        out[ext] = _remux(out["mp4"], root / f"clip.{ext}", fmt, offset)
    out["webm"] = _encode(root / "clip.webm", frames, audio, "webm", "libvpx-vp9", "libopus")
    return out


@pytest.mark.parametrize("ext", ["mp4", "ts", "mkv", "mov", "webm"])
def test_windows_equal_slices_of_the_whole_clip(files, ext):
    whole = read_clip(files[ext], fps=FPS, size=32, sample_rate=SR)
    assert abs(whole.duration - SECONDS) <= 1 / FPS and len(whole.frames) >= SECONDS * FPS - 1
    for start in (0.5, 3.0, 9.0):  # before and after the seek threshold, deep into the clip
        window = read_clip(files[ext], fps=FPS, size=32, sample_rate=SR, start=start, duration=2.0)
        first = round(start * FPS)
        assert np.array_equal(window.frames, whole.frames[first : first + 2 * FPS]), (ext, start)
        same = whole.audio[round(start * SR) : round((start + 2.0) * SR)]
        assert abs(_lag_ms(window.audio, same)) <= 2, (ext, start)  # the same sound, in time


def test_a_transport_stream_starts_late_and_its_window_is_the_right_one(files):
    with av.open(str(files["ts"])) as container:
        assert container.start_time / av.time_base > 1.0  # the clock does not start at zero
    window = read_clip(files["ts"], fps=FPS, size=32, start=5.0, duration=1.0)
    red = window.frames[..., 0].reshape(len(window.frames), -1).mean(1)
    mp4 = read_clip(files["mp4"], fps=FPS, size=32, start=5.0, duration=1.0)
    assert np.abs(red - mp4.frames[..., 0].reshape(len(mp4.frames), -1).mean(1)).max() < 6


def test_variable_frame_rate_picks_the_frame_nearest_each_output_time(tmp_path):
    """Frames at irregular times (gaps of 1/16 to 1/4 s): output frame i shows the source
    frame nearest to i / fps."""
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.choice([1 / 16, 1 / 8, 1 / 4], size=40))
    times -= times[0]
    path = _encode(
        tmp_path / "vfr.mp4",
        _ramp_frames(40),
        _clicks(times[-1] + 0.5, SR, EVERY),
        "mp4",
        "libx264",
        "aac",
        times,
    )
    clip = read_clip(path, fps=FPS, size=64)
    for i, frame in enumerate(clip.frames[: int(times[-1] * FPS)]):
        nearest = int(np.argmin(np.abs(times - i / FPS)))
        assert abs(float(frame[..., 0].mean()) - 4 * nearest % 256) < 6, (i, nearest)
