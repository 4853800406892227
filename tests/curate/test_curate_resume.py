"""A `kill -9` of curation mid-analysis, then a rerun: the same release as one uninterrupted
run, no half-written file, and no Ray process left behind (the cut's own kill test is in
tests/data/test_speakervid.py). And one stage re-run alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _ray_processes() -> set[int]:
    """PIDs of Ray's local cluster processes (raylet, GCS) on this machine."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"raylet" in cmd.split(b" ")[0] or b"gcs_server" in cmd.split(b" ")[0]:
                out.add(int(entry.name))
    return out


def _files(root: Path) -> dict[str, bytes]:
    """Every file of the release (the stage store and Hydra logs aside), by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".curate" not in p.parts
    }


def _run_until(cmd: list[str], cwd: Path, ready) -> None:  # noqa: ANN001
    """Start `cmd`, wait until `ready()` holds, then `kill -9` the driver."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the kill point"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_mid_analysis_then_rerun_equals_one_run(curated, raw_sources, tmp_path):
    reference, _ = curated
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "vidchat.curate",
        f"input={raw_sources}",
        f"output={out}",
        "workers=2",
        "progress=false",
        f"paths.root_dir={tmp_path}",
    ]
    before = _ray_processes()
    _run_until(cmd, REPO_ROOT, lambda: any((out / ".curate" / "people").glob("*.json")))
    assert not (out / "curate_report.json").exists()  # killed before the end
    deadline = time.time() + 30
    while _ray_processes() - before and time.time() < deadline:
        time.sleep(0.5)
    assert not _ray_processes() - before, "Ray processes outlived the killed run"
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    got, want = _files(out), _files(reference)
    assert sorted(got) == sorted(want)
    assert [k for k in got if got[k] != want[k]] == []
    assert not [p for p in out.rglob(".*") if p.is_file() and ".curate" not in p.parts]


@pytest.mark.slow
def test_a_stage_reruns_alone_and_gives_the_same_release(curated, raw_sources, tmp_path):
    import shutil

    from tests.curate.conftest import curate_config
    from vidchat.curate.run import curate
    from vidchat.curate.store import StageStore

    reference, _ = curated
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    store = StageStore(out)
    ytids = [p.stem for p in (out / ".curate" / "speech").iterdir()]
    shots = {y: store.load("people", y)["shots"] for y in ytids}
    stamps = {
        (s, y): store.path(s, y).stat().st_mtime_ns for s in ("speech", "people") for y in ytids
    }
    curate(curate_config(raw_sources, out, redo=("people",)))
    for y in ytids:
        assert store.path("people", y).stat().st_mtime_ns != stamps["people", y]  # recomputed
        assert store.path("speech", y).stat().st_mtime_ns == stamps["speech", y]  # kept
        assert store.load("people", y)["shots"] == shots[y]
    assert _files(out) == _files(reference)
