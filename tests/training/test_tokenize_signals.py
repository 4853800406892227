"""A tokenize run stopped by SIGTERM ends like Ctrl-C (one line, exit 130, no worker and no temp
file left), and one killed with SIGKILL keeps what it tokenized up to `stage.commit_seconds`
before the kill, even inside a shard that never filled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.training.test_tokenize_kill import _group, _progress, _tokenize_cmd
from vidchat.data.shards import ShardReader

pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.timeout(300)]


def _start(root: Path, demo_world, log: Path, *extra: str) -> subprocess.Popen:
    with log.open("w") as err:
        return subprocess.Popen(
            _tokenize_cmd(root, demo_world, *extra),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _wait_for_clips(run: subprocess.Popen, log: Path, clips: int) -> None:
    deadline = time.time() + 180
    while run.poll() is None and _progress(log) < clips and time.time() < deadline:
        time.sleep(0.01)
    assert run.poll() is None, "the run finished before the signal: make it longer"


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_sigterm_ends_tokenize_with_one_line_and_leaves_nothing(demo_world, tmp_path):
    log = tmp_path / "log.txt"
    run = _start(tmp_path / "run", demo_world, log)
    _wait_for_clips(run, log, 2)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 130, log.read_text()[-2000:]
    assert log.read_text().strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in log.read_text()
    deadline = time.time() + 15
    while _group(run.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _group(run.pid), "workers outlived the stopped run"
    assert not _temps(tmp_path / "run")


@pytest.fixture(scope="module")
def bigger_world(tmp_path_factory):
    """A demo world of 96 clips: a few seconds of tokenizing, so that a kill lands mid-run."""
    from tests.conftest import DemoWorld, make_demo_cfg
    from vidchat.data.manifest import load_manifest
    from vidchat.data.sources.demo import ensure_demo_world

    root = tmp_path_factory.mktemp("bigger_world") / "demo"
    cfg = make_demo_cfg(root, num_conversations=16)
    return DemoWorld(root, ensure_demo_world(root, cfg, progress=False), cfg, load_manifest(cfg))


def _committed(root: Path) -> int:
    """Clips in the run's committed shard so far (0 before its first commit)."""
    folders = list((root / "data_cache" / "tokens").glob("*"))
    try:
        return len(ShardReader(folders[0])) if folders else 0
    except Exception:  # noqa: BLE001 - no committed index yet
        return 0


def test_a_kill_keeps_what_was_tokenized_before_the_last_commit(bigger_world, tmp_path):
    log = tmp_path / "log.txt"
    root = tmp_path / "run"
    # one shard for everything (it never fills before the kill); commits every 0.5 s instead
    run = _start(
        root,
        bigger_world,
        log,
        "stage.clips_per_shard=1000",
        "stage.commit_seconds=0.5",
        "stage.num_workers=0",
        "data.num_conversations=16",
    )
    _wait_for_clips(run, log, 2)
    deadline = time.time() + 60  # until a commit holds 2 clips (a loaded machine is slow)
    while _committed(root) < 2 and run.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    committed_before = _committed(root)
    done_before_kill = _progress(log)
    assert run.poll() is None and done_before_kill < len(bigger_world.manifest.records)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    kept = _committed(root)
    # what a commit held survives the kill, readable; the run had not finished
    assert 2 <= committed_before <= kept < len(bigger_world.manifest.records), (
        committed_before,
        kept,
    )
