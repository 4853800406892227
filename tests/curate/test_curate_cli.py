"""Bad curation input is one `error:` line before any work, with nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    "args, message",
    [
        (["input={tmp}/missing", "output={tmp}/out"], "input folder not found"),
        (["input={tmp}/empty", "output={tmp}/out"], "no source videos"),
        (["input={raw}"], "curation needs output=DIR"),
        (["input={raw}", "output={raw}/out"], "must not be inside the input folder"),
        (["input={raw}", "output={tmp}/out", "workers=0"], "curate.workers must be >= 1"),
        (["input={raw}", "output={tmp}/out", "redo=[faces]"], "curate.redo must be a list of"),
        (["input={raw}", "output={tmp}/out", "shots.threshold=abc"], "must be a finite number"),
        (["input={raw}", "output={tmp}/out", "quality.drop_share=1.5"], "drop_share must be in"),
        (["input={raw}", "output={tmp}/user"], "not made by vidchat.curate"),
        (
            ["input={raw}", "output={tmp}/out", "speech.asr=whisper", "speech.asr_model={tmp}"],
            "asr_model must be a local Whisper checkpoint folder",
        ),
        (["input={raw}", "output={tmp}/out", "gpus=-1"], "curate.gpus must be >= 0"),
    ],
    ids=[
        "missing",
        "empty",
        "no_output",
        "inside",
        "workers",
        "redo",
        "threshold",
        "share",
        "user_folder",
        "whisper_missing",
        "gpus",
    ],
)
def test_bad_input_is_one_line(args, message, raw_sources, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    args = [a.format(tmp=tmp_path, raw=raw_sources) for a in args]
    cmd = [sys.executable, "-m", "vidchat.curate", *args, f"paths.root_dir={tmp_path}"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], done.stderr
    assert not (tmp_path / "out").exists() and not (raw_sources / "out").exists()
    assert sorted(p.name for p in (tmp_path / "user").iterdir()) == ["notes.txt"]


def test_a_missing_package_is_one_line_before_any_work(raw_sources, tmp_path, monkeypatch):
    """A curation run without resemblyzer once reported every source as bad and wrote 0 clips
    (#30 item 8); now it stops at once, naming the package and the set-up commands."""
    import importlib.util

    from vidchat.cli import compose
    from vidchat.curate.config import from_cfg
    from vidchat.curate.run import curate
    from vidchat.errors import VidchatError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "resemblyzer" else real(name, *a),
    )
    cfg = from_cfg(compose("curate", [f"input={raw_sources}", f"output={tmp_path}/out"]))
    with pytest.raises(VidchatError) as info:
        curate(cfg)
    assert str(info.value) == (
        "curation needs resemblyzer, which is not installed: "
        'pip install -e ".[all]" && bash scripts/install_extras.sh'
    )
    assert not (tmp_path / "out").exists()
