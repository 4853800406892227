"""The web demo leaves nothing behind: request folders age out, and a stopped or killed server's
files (its own and Gradio's copies) are gone by the time the next server has started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidchat.webapp.workdirs import OWNER, PREFIX, WorkDirs, remove_abandoned

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_work_folders_are_swept_and_removed(tmp_path):
    work = WorkDirs(tmp_path / "work", max_age_s=60)
    (tmp_path / "work").mkdir()
    old, fresh = work.new(), work.new()
    (old / "answer.mp4").write_bytes(b"x")
    os.utime(old, (0, 0))  # older than max_age_s
    work.gradio_dir.mkdir()
    os.utime(work.gradio_dir, (0, 0))  # Gradio's folder is aged by Gradio, file by file
    work.new()  # a new request sweeps what is stale
    assert not old.exists() and fresh.exists() and work.gradio_dir.exists()
    work.remove_all()  # when the server stops
    assert not (tmp_path / "work").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    return proc.pid


def test_only_roots_of_servers_that_are_gone_are_removed(tmp_path):
    roots = {name: tmp_path / f"{PREFIX}{name}" for name in ("dead", "live", "unstamped")}
    for root in roots.values():
        root.mkdir()
        (root / "answer.mp4").write_bytes(b"x")
    (roots["dead"] / OWNER).write_text(str(_dead_pid()))
    (roots["live"] / OWNER).write_text(str(os.getppid()))
    (tmp_path / "gradio").mkdir()  # someone else's
    assert remove_abandoned(tmp_path) == [roots["dead"]]
    assert roots["live"].exists() and roots["unstamped"].exists() and (tmp_path / "gradio").exists()


def _start_server(tmp: Path, demo_world) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"} | {"TMPDIR": str(tmp)}
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "vidchat.webapp",
        "--port",
        str(port),
        "--demo-data",
        str(demo_world.root),
        "--max-answer-seconds",
        "1",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    for line in proc.stdout:
        if line.startswith("vidchat demo on") or time.time() > deadline:
            break
    url = f"http://127.0.0.1:{port}/"
    while time.time() < deadline:  # the line comes just before the socket listens
        try:
            import urllib.request

            urllib.request.urlopen(url, timeout=5)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("the demo server did not start within 120 s")


def _answer(url: str, partner: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    _, status, _ = client.predict(
        handle_file(str(partner)),
        None,
        "checkpoint default",
        None,
        1.0,
        0,
        1.0,
        0,
        0.5,
        api_name="/answer",
    )
    assert status.startswith("done"), status


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_stopped_or_killed_server_leaves_no_files(tmp_path, demo_world, partner_upload):
    pytest.importorskip("gradio")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc, url = _start_server(tmp, demo_world)
    _answer(url, partner_upload)
    (root,) = tmp.glob(f"{PREFIX}*")
    assert any((root / "gradio").rglob("*.mp4"))  # Gradio's copies live in the server's root
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert not list(tmp.iterdir())  # no root, and no shared <tmp>/gradio

    killed, url = _start_server(tmp, demo_world)
    _answer(url, partner_upload)
    killed.kill()
    killed.wait(timeout=60)
    (abandoned,) = tmp.glob(f"{PREFIX}*")
    proc, _ = _start_server(tmp, demo_world)  # the next server clears what the killed one left
    try:
        assert not abandoned.exists() and len(list(tmp.glob(f"{PREFIX}*"))) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert not list(tmp.iterdir())
