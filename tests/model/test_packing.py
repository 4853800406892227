"""Packed rows (`stage.batching=pack`): a row of several sequences must compute what each
sequence computes alone (block-causal attention, positions restarting per sequence), without
SDPA's math kernel."""

from __future__ import annotations

import pytest
import torch
from conftest import demo_layout, random_segment
from test_depth import depth_model
from torch.nn.attention import SDPBackend, sdpa_kernel

from vidchat.data.lm_dataset import pack_rows
from vidchat.model import Role
from vidchat.training.lm.losses import next_token_nll

pytestmark = pytest.mark.timeout(120)

HEADS = [("flat", "flat"), ("maskgit", "depth"), ("depth", "depth")]
KEYS = ("tokens", "roles", "next_slots", "depth", "modality")


def sequences(layout, gen, seconds=(0.5, 1.0)):
    return [
        layout.build(
            [
                random_segment(layout, Role.PARTNER, s, gen),
                random_segment(layout, Role.RESPONDER, s, gen),
            ],
            ref=torch.randint(0, 1024, (4, 4), generator=gen),
        )
        for s in seconds
    ]


def nll(model, row, documents=None):
    batch = {k: row[k][None] for k in KEYS}
    return next_token_nll(
        model,
        batch["tokens"],
        batch["tokens"],
        batch["roles"],
        batch["next_slots"],
        depth=batch["depth"],
        modality=batch["modality"],
        documents=None if documents is None else documents[None],
    )[0]


@pytest.mark.parametrize("heads", HEADS, ids=lambda h: f"video_{h[0]}-audio_{h[1]}")
def test_a_packed_row_computes_each_sequence_as_alone(heads, gen):
    layout = demo_layout(video_head=heads[0], audio_head=heads[1])
    model = depth_model(layout).eval()
    rows = [{k: getattr(s, k) for k in KEYS} for s in sequences(layout, gen)]
    (packed,) = pack_rows(rows, max_len=10_000)
    first = len(rows[0]["tokens"])
    assert torch.equal(packed["documents"][first - 1 : first + 1], torch.tensor([0, 1]))
    with torch.no_grad():
        together = nll(model, packed, packed["documents"])
        alone = [nll(model, r) for r in rows]
        leaky = nll(model, packed)  # the old packing: the second sequence sees the first
    # position first-1 predicts the second sequence's <bos>: no counterpart alone
    torch.testing.assert_close(together[: first - 1], alone[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(together[first:], alone[1], rtol=1e-4, atol=1e-5)
    assert (leaky[first:] - alone[1]).abs().max() > 1e-3


def test_packed_attention_runs_without_the_math_kernel(gen):
    """The block-causal mask goes to SDPA's fused kernels (flash on this CPU; memory-efficient
    on a GPU): with every other backend disabled the packed forward still runs and trains."""
    layout = demo_layout(video_head="maskgit", audio_head="depth")
    model = depth_model(layout)
    rows = [{k: getattr(s, k) for k in KEYS} for s in sequences(layout, gen)]
    (packed,) = pack_rows(rows, max_len=10_000)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        loss = nll(model, packed, packed["documents"]).mean()
        loss.backward()
    assert torch.isfinite(loss) and model.layers[0].self_attn.q_proj.weight.grad is not None
    with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION]), pytest.raises(RuntimeError):
        nll(model, packed, packed["documents"])  # a kernel this CPU lacks: the check can fail
