"""A web demo server on a free local port (the shipped demo LM, the test demo world), and a
partner clip with its audio in the file, as a person would upload it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from vidchat.data.records import read_record
from vidchat.media import write_clip


@dataclass
class Server:
    url: str
    work_root: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_server(demo_world):
    pytest.importorskip("gradio")
    from vidchat.inference.loading import load_pipeline
    from vidchat.webapp.app import launch
    from vidchat.webapp.config import DemoConfig

    cfg = DemoConfig(
        port=free_port(),
        demo_data=str(demo_world.root),
        max_input_seconds=10,
        max_upload_mb=5,
        max_answer_seconds=3,
    )
    app = launch(cfg, load_pipeline(device="cpu"), block=False)
    yield Server(f"http://127.0.0.1:{cfg.port}/", app.vidchat_work.root)
    app.close()
    app.vidchat_work.remove_all()


@pytest.fixture(scope="session")
def partner_upload(demo_world, tmp_path_factory) -> Path:
    """A held-out partner turn as one mp4 with video and audio (the demo world's cut clips keep
    the audio in a wav beside the mp4, as the release does)."""
    pair = next(p for p in demo_world.manifest.pairs_for("test") if p.branch == "dialogue")
    clip = read_record(pair.partner)
    path = tmp_path_factory.mktemp("uploads") / "partner_turn.mp4"
    return write_clip(path, clip.frames, clip.audio, clip.fps, clip.sample_rate)
