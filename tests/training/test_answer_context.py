"""An answer at inference follows the context it was trained after (#33's overfit rung found
that it did not): for every training dialogue pair of the demo world, the prompt that
`infer.py` / `python -m vidchat.eval` lay out from the partner clip equals, token for token, the
training sequence up to the answer, also when the partner's turn is longer than
`stage.max_segment_seconds` (training keeps its last seconds, and so does the pipeline)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import DEMO_TEST_OVERRIDES, REPO_ROOT
from vidchat.model.vocab import Role

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_inference_prompt_equals_the_training_context(demo_world, tmp_path):
    from vidchat.cli import compose
    from vidchat.data.lm_dataset import item_row
    from vidchat.eval.runner import read_pairs
    from vidchat.inference.loading import load_pipeline
    from vidchat.training.lm.data import prepare_data
    from vidchat.training.lm.entry import lm_job

    world = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    common = [f"paths.root_dir={tmp_path}", f"data.root={demo_world.root}", *world]
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), "stage=tokenize", *common],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    job, _ = lm_job(
        compose(
            "train",
            ["stage=sft", "stage.max_segment_seconds=1.25", "stage.branches=[dialogue]", *common],
        )
    )
    data = prepare_data(job)
    assert data.meta["partner_seconds"] == 1.25  # what the export records
    train = data.train
    # the shipped 32 px LM: the tokenizers of the demo world's default tokenize
    pipe = load_pipeline(REPO_ROOT / "checkpoints" / "demo" / "lm", device="cpu")
    pipe.partner_seconds = 1.25
    pairs = {p.responder.clip_id: p for p in demo_world.manifest.pairs_for("train", ["dialogue"])}
    inputs = {
        i.pair.responder.clip_id: i
        for i in read_pairs(pipe, list(pairs.values()), [], demo_world.manifest.records)
    }
    longer = 0
    for k, example in enumerate(train.examples):
        item = inputs[example.segments[-1][1]]
        row = item_row(train[k])
        answer_at = int((row["roles"] == int(Role.RESPONDER)).nonzero()[0])  # <responder>
        prompt = pipe.prompt(item.partner, item.reference).tokens
        assert torch.equal(row["tokens"][: answer_at + 1], prompt), example.segments
        longer += item.partner.duration > 1.25
    assert len(train.examples) >= 4 and longer >= 2  # the crop was exercised
