"""Distributed runs on CPU processes: Lightning DDP (gloo) and DeepSpeed ZeRO-2 under torchrun."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lm_fixtures import ROOT, write_synthetic_world

from vidchat.model.checkpoint import load_consolidated
from vidchat.training.export import export_from_checkpoint

pytestmark = pytest.mark.slow


def _run(cmd, cwd=ROOT):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_ddp_with_two_cpu_processes(tmp_path):
    overrides = write_synthetic_world(tmp_path)
    out = _run(
        [sys.executable, "train.py", "stage=pretrain", "debug=default", "trainer=ddp", *overrides]
    )
    assert "MEMBER: 2/2" in out  # two gloo processes
    run_dir = tmp_path / "checkpoints" / "pretrain-debug"
    assert (run_dir / "ckpt" / "last.ckpt").is_file()
    _, _, meta = load_consolidated(run_dir / "lm")
    assert meta["step"] == 4


@pytest.mark.parametrize("heads", [["model.layout.video_head=flat", "model.layout.audio_head=flat"],
                                   ["model.layout.video_head=maskgit",
                                         "model.layout.audio_head=depth"]],
                         ids=["flat", "maskgit+depth"])  # fmt: skip
def test_deepspeed_zero2_on_cpu_saves_a_checkpoint_that_consolidates(tmp_path, heads):
    overrides = write_synthetic_world(tmp_path)
    torchrun = Path(sys.executable).with_name("torchrun")
    _run([str(torchrun), "--nproc_per_node", "2", "train.py", "stage=pretrain", "debug=default",
          "trainer=deepspeed_zero2", *overrides, *heads])  # fmt: skip
    run_dir = tmp_path / "checkpoints" / "pretrain-debug"
    zero_ckpt = run_dir / "ckpt" / "last.ckpt"
    assert (zero_ckpt / "latest").is_file()  # a sharded DeepSpeed checkpoint folder
    stem = export_from_checkpoint(zero_ckpt, tmp_path / "again" / "lm")
    again, layout, meta = load_consolidated(stem)
    exported, _, _ = load_consolidated(run_dir / "lm")
    assert meta["step"] == 4 and layout.vocab.size == again.cfg.vocab_size
    for (name, a), b in zip(again.state_dict().items(), exported.state_dict().values()):
        assert torch.equal(a, b), name
