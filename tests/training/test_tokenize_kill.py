"""A `kill -9` of a tokenize run leaves no worker behind, and a rerun finishes the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DEMO_TEST_OVERRIDES, REPO_ROOT
from vidchat.data.shards import ShardReader

pytestmark = pytest.mark.serial  # timing-sensitive: runs alone (tests/conftest.py)


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


@pytest.mark.slow
def test_kill_9_of_tokenize_leaves_no_worker_and_a_rerun_completes(demo_world, tmp_path):
    data = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    cmd = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "stage=tokenize",
        f"paths.root_dir={tmp_path}",
        f"data.root={demo_world.root}",
        "stage.num_workers=2",
        *data,
    ]
    run = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while len(_group(run.pid)) < 3 and time.time() < deadline:  # the run and its 2 workers
        time.sleep(0.05)
    assert len(_group(run.pid)) >= 3, "the workers never started"
    time.sleep(0.5)
    os.kill(run.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
    run.wait()
    deadline = time.time() + 15
    while _group(run.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _group(run.pid), "tokenize workers outlived their killed parent"
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    shards = next((tmp_path / "data_cache" / "tokens").iterdir())
    assert len(ShardReader(shards)) == len(demo_world.manifest.records)


def _tokenize_cmd(root: Path, demo_world, *extra: str) -> list[str]:
    data = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    return [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "stage=tokenize",
        f"paths.root_dir={root}",
        f"data.root={demo_world.root}",
        "stage.num_workers=2",
        "stage.clips_per_shard=4",
        *data,
        *extra,
    ]


def _progress(log: Path) -> int:
    """The last clip count tqdm printed ("tokenize ...:  42%| | 10/24")."""
    import re

    counts = re.findall(r"\| (\d+)/\d+ \[", log.read_text(errors="replace"))
    return int(counts[-1]) if counts else 0


def _contents(root: Path) -> dict:
    (shards,) = (root / "data_cache" / "tokens").iterdir()
    reader = ShardReader(shards)
    return {cid: (reader[cid].video.tolist(), reader[cid].audio.tolist()) for cid in reader.ids()}


@pytest.mark.slow
def test_kills_at_random_points_lose_at_most_one_unit_and_end_equal(demo_world, tmp_path):
    import random

    whole = subprocess.run(
        _tokenize_cmd(tmp_path / "whole", demo_world), capture_output=True, text=True, timeout=600
    )
    assert whole.returncode == 0, whole.stderr[-2000:]
    root, rng = tmp_path / "killed", random.Random(0)
    committed, kills = 0, 0
    for attempt in range(3):
        log = tmp_path / f"log{attempt}.txt"
        with log.open("w") as err:
            run = subprocess.Popen(
                _tokenize_cmd(root, demo_world),
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            deadline = time.time() + 180
            while run.poll() is None and _progress(log) < 1 and time.time() < deadline:
                time.sleep(0.01)  # until this run has tokenized a clip of its own
            time.sleep(rng.uniform(0.0, 0.3))  # then a random point
            if run.poll() is not None:
                break  # it finished first: nothing left to kill
            os.kill(run.pid, signal.SIGKILL)
            run.wait()
            kills += 1
        deadline = time.time() + 15
        while _group(run.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _group(run.pid), "workers outlived the killed run"
        shards = root / "data_cache" / "tokens"
        now = len(ShardReader(next(shards.iterdir()))) if shards.is_dir() else 0
        done_here = _progress(log)
        assert now >= committed and done_here - (now - committed) <= 4, (attempt, done_here, now)
        committed = now
    assert kills >= 2, "the kills should land mid-run"
    final = subprocess.run(
        _tokenize_cmd(root, demo_world), capture_output=True, text=True, timeout=600
    )
    assert final.returncode == 0, final.stderr[-2000:]
    assert _contents(root) == _contents(tmp_path / "whole")
