"""The web demo's request logic without a browser: upload checks and the streamed answer."""

from __future__ import annotations

import numpy as np
import pytest

from vidchat.errors import ConfigError
from vidchat.media import probe, write_clip
from vidchat.webapp import session

LIMITS = session.Limits(max_upload_mb=1, max_input_seconds=3, max_answer_seconds=2)


def test_uploads_are_checked_with_one_message(tmp_path, partner_upload):
    assert session.check_partner(partner_upload, LIMITS) == partner_upload
    cases = {
        None: "record or upload a turn",
        tmp_path / "gone.mp4": "upload it again",
    }
    (tmp_path / "text.mp4").write_text("not a video")
    cases[tmp_path / "text.mp4"] = "not a video file"
    silent = write_clip(tmp_path / "silent.mp4", np.zeros((8, 32, 32, 3), np.uint8), None, 8, 16000)
    cases[silent] = "has no audio"
    long = np.zeros((40, 32, 32, 3), np.uint8)
    cases[write_clip(tmp_path / "long.mp4", long, np.zeros(80000, np.float32), 8, 16000)] = (
        "longer than"
    )
    (tmp_path / "big.mp4").write_bytes(partner_upload.read_bytes() * 200)
    cases[tmp_path / "big.mp4"] = "upload limit"
    for path, message in cases.items():
        with pytest.raises(session.DemoInputError, match=message):
            session.check_partner(path, LIMITS)
    with pytest.raises(ConfigError, match=r"sampling.video.top_p must be in \(0, 1\]"):
        session.sampling_config(1.0, 0, 1.5, 0)
    with pytest.raises(ConfigError, match="sampling.video.temperature must be a finite number"):
        session.sampling_config(float("nan"), 0, 1.0, 0)
    with pytest.raises(ConfigError, match="sampling.seed must be an integer"):
        session.sampling_config(1.0, 0, 1.0, 2.5)
    assert session.sampling_config(0, 0, 1, 0).video.temperature == 0  # greedy, not refused
    for bad in (float("nan"), 0, -1, None):
        with pytest.raises(session.DemoInputError, match="maximum length"):
            session.answer_seconds(bad, 10)
    assert session.answer_seconds(50, 10) == 10


def test_answer_streams_chunks_then_the_whole_mp4(tmp_path, partner_upload, saved_responder):
    from vidchat.inference.loading import load_pipeline

    pipe = load_pipeline(saved_responder, device="cpu")
    steps = list(
        session.answer(
            pipe, partner_upload, None, session.sampling_config(1, 0, 1, 0), 1.0, tmp_path
        )
    )
    *chunks, last = steps
    assert len(chunks) >= 1 and all(s.preview is not None and s.video is None for s in chunks)
    h, w = pipe.frame_size
    k = chunks[0].preview.shape[0] // h
    assert chunks[0].preview.shape == (k * h, k * 2 * w, 3) and chunks[0].first_chunk_s > 0
    assert last.video and "real-time factor" in last.status
    info = probe(last.video)
    partner = probe(partner_upload)
    assert info.sample_rate == pipe.sample_rate and (info.height, info.width) == (h, 2 * w)
    assert partner.duration < info.duration <= partner.duration + 1.0 + 2 / pipe.fps


def test_a_face_name_cannot_reach_outside_the_demo_faces(saved_responder, tmp_path):
    from vidchat.inference.loading import load_pipeline

    pipe = load_pipeline(saved_responder, device="cpu")
    for name in ("../secret", "/etc/passwd"):
        with pytest.raises(session.DemoInputError, match="unknown face"):
            session.pick_reference(pipe, name, None, tmp_path)
