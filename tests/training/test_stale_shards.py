"""Changing `data.root` never trains on the old data (#30 item 1): a debug pretrain on folder A,
then on folder B (other clips under the same file names) tokenizes B's clips, and the shards
hold B's clips only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidchat.data.shards import ShardReader
from vidchat.media import write_clip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]


def folder(root: Path, seed: int, n: int = 8) -> Path:
    """n talking clips of 2 s (random faces, a tone each) named clip0.mp4.. under root."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        frames = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
        tone = (0.3 * np.sin(np.arange(32000) * 0.02 * (seed + i))).astype(np.float32)
        write_clip(root / f"clip{i}.mp4", frames, tone, fps=8, sample_rate=16000)
    return root


def pretrain(work: Path, data_root: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "stage=pretrain",
            "debug=default",
            "data=folder",
            f"data.root={data_root}",
            f"paths.root_dir={work}",
            "data.val_fraction=0.2",
            "data.test_fraction=0",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_pretraining_on_folder_b_after_folder_a_tokenizes_b(tmp_path):
    a, b = folder(tmp_path / "A", seed=1), folder(tmp_path / "B", seed=2)
    work = tmp_path / "work"
    work.mkdir()
    pretrain(work, a)
    (shards,) = (work / "data_cache" / "tokens").iterdir()  # one set: same data and tokenizer names
    first = ShardReader(shards)
    assert {Path(first[c].meta["path"]).parent for c in first.ids()} == {a}
    pretrain(work, b)
    reader = ShardReader(shards)
    assert len(reader) == 8 and {Path(reader[c].meta["path"]).parent for c in reader.ids()} == {b}
    assert not np.array_equal(reader["clip0"].video, first["clip0"].video)
