"""Distributed runs on CPU processes: Lightning DDP (gloo), and DeepSpeed ZeRO-2 and ZeRO-3 (fp32
and bf16) under torchrun."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lm_fixtures import ROOT, write_synthetic_world

from vidchat.model.checkpoint import load_consolidated
from vidchat.training.lm.export import export_from_checkpoint

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


MASKGIT = ["model.layout.video_head=maskgit", "model.layout.audio_head=depth"]


@pytest.mark.parametrize(
    ("stage", "processes", "options"),
    [
        (2, 2, ["model.layout.video_head=flat", "model.layout.audio_head=flat"]),
        # DeepSpeed's bf16 holds bf16 weights: RoPE once promoted q and k to fp32 beside a bf16 v
        (2, 2, [*MASKGIT, "trainer.precision=bf16-mixed", "model.partner_summary=true"]),
        # one process, as on one GPU (`trainer.devices=1`, no torchrun); activation checkpointing
        # wraps the blocks, whose parameters zero_to_fp32 then names with the wrapper's prefix
        (
            3,
            1,
            [
                *MASKGIT,
                "trainer.precision=bf16-mixed",
                "model.partner_summary=true",
                "model.grad_checkpointing=true",
            ],
        ),
    ],
    ids=["zero2-flat-fp32", "zero2-maskgit+depth-bf16-summary", "zero3-1proc-bf16-summary-ac"],
)
def test_deepspeed_on_cpu_saves_a_checkpoint_that_consolidates(tmp_path, stage, processes, options):
    overrides = write_synthetic_world(tmp_path)
    torchrun = Path(sys.executable).with_name("torchrun")
    launch = (
        [str(torchrun), "--nproc_per_node", str(processes)] if processes > 1 else [sys.executable]
    )
    devices = [] if processes > 1 else ["trainer.devices=1"]
    _run(
        [
            *launch,
            "train.py",
            "stage=pretrain",
            "debug=default",
            f"trainer=deepspeed_zero{stage}",
            *devices,
            *overrides,
            *options,
        ]
    )
    run_dir = tmp_path / "checkpoints" / "pretrain-debug"
    zero_ckpt = run_dir / "ckpt" / "last.ckpt"
    assert (zero_ckpt / "latest").is_file()  # a sharded DeepSpeed checkpoint folder
    stem = export_from_checkpoint(zero_ckpt, tmp_path / "again" / "lm")
    again, layout, meta = load_consolidated(stem)
    exported, _, _ = load_consolidated(run_dir / "lm")
    assert meta["step"] == 4 and layout.vocab.size == again.cfg.vocab_size
    assert math.isfinite(json.loads((run_dir / "metrics.json").read_text())["val_loss"])
    for (name, a), b in zip(again.state_dict().items(), exported.state_dict().values()):
        assert torch.equal(a, b), name
