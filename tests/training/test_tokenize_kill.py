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
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), "stage=tokenize", f"paths.root_dir={tmp_path}",
           f"data.root={demo_world.root}", "stage.num_workers=2", *data]  # fmt: skip
    run = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
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
