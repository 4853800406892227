"""`python -m vidchat.live`: a recorded partner through the live loop into one mp4."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.live.test_loop import silence, speech
from vidchat.data.demo_world.face import neutral_track, render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.media import probe, write_clip

pytestmark = pytest.mark.timeout(180)


def live(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vidchat.live", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=150)


def test_a_recorded_turn_is_answered_into_one_file(tmp_path):
    audio = np.concatenate([speech(2.0), silence(1.0)])
    face = render_face(make_identities(4)[1], neutral_track(24), 64)
    clip = write_clip(tmp_path / "partner.mp4", face, audio, 8.0, 16000)
    out = tmp_path / "live.mp4"
    done = live(
        "--input", str(clip), "--output", str(out), "--answer-seconds", "1", "--device", "cpu"
    )
    assert done.returncode == 0, done.stderr
    assert "1 turn(s) answered, 0 barge-in(s)" in done.stdout
    info = probe(out)
    assert (info.width, info.height) == (128, 64)  # the partner beside the responder
    assert info.duration == pytest.approx(3.0 + 1.0, abs=0.3)  # the input, then the answer's tail
    again = live("--input", str(clip), "--output", str(out))
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: --output {out} exists; pass --overwrite to replace it"
    ]


def test_bad_settings_are_one_line(tmp_path):
    done = live("--input", "x.mp4", "--output", str(tmp_path / "o.mp4"), "--silence-seconds", "0")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: live.silence_seconds must be > 0, got 0.0"]
