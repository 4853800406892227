"""read_clip / write_clip: round trips, resampling, long-clip alignment, bad files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from vidchat.errors import VidchatError
from vidchat.media import MediaError, probe, read_clip, read_image, write_clip, write_image


def _ramp_frames(t: int, h: int = 64, w: int = 64) -> np.ndarray:
    """Frame i has red = 4*i (a per-frame code readable after compression) and a green square."""
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = (4 * np.arange(t) % 256).astype(np.uint8)[:, None, None]
    frames[:, 8:24, 8:24, 1] = 255
    return frames


def _clicks(duration: float, sr: int, every: float) -> np.ndarray:
    """Short 1 kHz bursts at multiples of `every` seconds: their positions reveal any drift."""
    audio = np.zeros(round(duration * sr), np.float32)
    t = np.arange(round(0.01 * sr)) / sr
    burst = 0.8 * np.sin(2 * np.pi * 1000 * t) * np.hanning(len(t))
    for k in range(int(duration / every)):
        i = round(k * every * sr)
        audio[i : i + len(burst)] = burst[: len(audio) - i]
    return audio


def _onsets(audio: np.ndarray, sr: int, every: float) -> np.ndarray:
    """Energy-centroid time of each burst near its nominal position."""
    times = []
    for k in range(1, int(len(audio) / sr / every) - 1):
        lo, hi = round((k * every - 0.1) * sr), round((k * every + 0.1) * sr)
        e = audio[lo:hi].astype(np.float64) ** 2
        times.append((lo + (e * np.arange(len(e))).sum() / e.sum()) / sr)
    return np.array(times)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    sr = 16000
    audio = 0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * sr) / sr).astype(np.float32)
    write_clip(path, _ramp_frames(48), audio, fps=24, sample_rate=sr)
    return path


def test_round_trip_keeps_count_size_fps_duration(clip_path):
    clip = read_clip(clip_path)
    assert clip.frames.shape == (48, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == pytest.approx(24.0)
    assert clip.duration == pytest.approx(2.0, abs=1 / 24)
    assert clip.sample_rate == 16000 and clip.audio.dtype == np.float32
    assert abs(len(clip.audio) - 32000) <= 16000 / 24
    # frames come back in order: the red code of frame i is 4*i (within compression error)
    np.testing.assert_allclose(clip.frames[:, 40, 40, 0], 4 * np.arange(48), atol=6)
    info = probe(clip_path)
    assert (info.width, info.height, info.num_frames, info.sample_rate) == (64, 64, 48, 16000)


def test_round_trip_audio_is_aligned(clip_path):
    clip = read_clip(clip_path)
    ref = 0.3 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)
    lags = range(-8, 9)
    scores = [np.dot(clip.audio[1000 + lag : 30000 + lag], ref[1000:30000]) for lag in lags]
    assert list(lags)[int(np.argmax(scores))] == 0


def test_resample_fps_size_rate_picks_nearest_frames(clip_path):
    clip = read_clip(clip_path, fps=8, size=32, sample_rate=22050)
    assert clip.frames.shape == (16, 32, 32, 3)
    assert clip.fps == 8 and clip.sample_rate == 22050
    assert len(clip.audio) == round(2.0 * 22050)
    # output frame i shows source frame 3*i
    np.testing.assert_allclose(clip.frames[:, 20, 20, 0], 12 * np.arange(16), atol=6)
    rect = read_clip(clip_path, size=(16, 24))
    assert rect.frames.shape == (48, 16, 24, 3)
    up = read_clip(clip_path, fps=48)
    assert up.frames.shape[0] == 96


def test_window_and_bbox_crop(clip_path):
    clip = read_clip(clip_path, start=0.5, duration=1.0, bbox=[0.0, 0.0, 0.5, 0.5], size=16)
    assert clip.frames.shape == (24, 16, 16, 3)
    assert len(clip.audio) == 16000
    np.testing.assert_allclose(clip.frames[:, 12, 12, 0], 4 * np.arange(12, 36), atol=8)
    # the green square (pixels 8..24 of 64) fills the middle of the top-left quarter crop
    assert clip.frames[0, 6, 6, 1] > 200 and clip.frames[0, 15, 15, 1] < 60


@pytest.mark.slow
def test_long_clip_has_no_drift(tmp_path):
    """60 s at 25 fps with 44.1 kHz audio, read at 8 fps / 16 kHz: video and audio stay aligned."""
    fps, sr, seconds, every = 25, 44100, 60.0, 2.0
    t = int(seconds * fps)
    frames = np.zeros((t, 16, 16, 3), np.uint8)
    frames[(np.arange(t) % int(every * fps)) == 0] = 255  # a white flash with each audio burst
    path = tmp_path / "long.mp4"
    write_clip(path, frames, _clicks(seconds, sr, every), fps=fps, sample_rate=sr)
    clip = read_clip(path, fps=8, sample_rate=16000)
    assert clip.frames.shape[0] == 480
    assert len(clip.audio) == round(60.0 * 16000)
    onsets = _onsets(clip.audio, 16000, every)
    expected = np.arange(1, len(onsets) + 1) * every + 0.005
    assert np.abs(onsets - expected).max() < 0.002  # 2 ms, no drift after a minute
    # flashes at 25 fps land at 8 fps output frames nearest to k*2 s = frame 16*k
    bright = np.flatnonzero(clip.frames[:, 8, 8, 0] > 128)
    np.testing.assert_array_equal(bright, np.arange(0, 480, 16))
    # a late window sees the same alignment
    late = read_clip(path, fps=8, sample_rate=16000, start=40.0, duration=10.0)
    assert late.frames.shape[0] == 80 and len(late.audio) == 160000
    assert np.flatnonzero(late.frames[:, 8, 8, 0] > 128).tolist() == [0, 16, 32, 48, 64]
    assert _onsets(late.audio, 16000, every)[0] == pytest.approx(2.005, abs=0.002)


def test_missing_and_empty_files_name_the_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(MediaError, match="nope.mp4.*not found"):
        read_clip(missing)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty.mp4.*empty"):
        read_clip(empty)
    assert issubclass(MediaError, VidchatError)


def test_corrupt_and_truncated_files(tmp_path, clip_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match="garbage.mp4"):
        read_clip(garbage)
    data = clip_path.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated.mp4"):
        read_clip(truncated)


def test_missing_streams(tmp_path):
    silent = tmp_path / "silent.mp4"
    write_clip(silent, _ramp_frames(12), None, fps=24, sample_rate=16000)
    with pytest.raises(MediaError, match="silent.mp4.*no audio"):
        read_clip(silent)
    clip = read_clip(silent, require_audio=False, sample_rate=16000)
    assert clip.frames.shape[0] == 12 and len(clip.audio) == 8000 and not clip.audio.any()

    audio_only = tmp_path / "audio_only.m4a"
    with av.open(str(audio_only), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 16000), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(MediaError, match="audio_only.m4a.*no video"):
        read_clip(audio_only)
    clip = read_clip(audio_only, require_video=False)
    assert clip.frames.shape[0] == 0 and abs(len(clip.audio) - 16000) < 1100


def test_image_round_trip(tmp_path):
    image = _ramp_frames(1, 20, 30)[0]
    path = write_image(tmp_path / "ref.png", image)
    np.testing.assert_array_equal(read_image(path), image)
    assert read_image(path, size=(10, 15)).shape == (10, 15, 3)
    with pytest.raises(MediaError, match="gone.png"):
        read_image(tmp_path / "gone.png")


def test_write_is_atomic_and_rejects_bad_frames(tmp_path):
    with pytest.raises(MediaError, match="bad.mp4.*uint8"):
        write_clip(tmp_path / "bad.mp4", np.zeros((2, 8, 8, 3), np.float32), None, 24, 16000)
    assert list(tmp_path.iterdir()) == []  # no partial or temp file left behind
    odd = write_clip(tmp_path / "odd.mp4", _ramp_frames(4, 15, 17), None, 24, 16000)
    assert read_clip(odd, require_audio=False).frames.shape == (4, 16, 18, 3)


def test_centre_square_crops_the_longer_side_only():
    from vidchat.media import centre_square, crop_resize

    assert centre_square(176, 144) == pytest.approx([16 / 176, 0.0, 160 / 176, 1.0])
    assert centre_square(100, 200) == [0.0, 0.25, 1.0, 0.75]
    image = np.zeros((144, 176, 3), np.uint8)
    image[:, 16:160] = 255  # the centre square is white, the side bands black
    assert (crop_resize(image, None, centre_square(176, 144)) == 255).all()
