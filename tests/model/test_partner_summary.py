"""`model.partner_summary`: each responder turn's first step reads the mean input of the partner
frames it answers. Generation with the KV cache must equal the full forward, a padded batch
must equal single runs, the summary must see only the partner turn before it, and it must
reach the answer."""

import pytest
import torch
from conftest import demo_layout, random_segment
from test_depth import GREEDY, depth_model, prompts
from uncached import generate_uncached

from vidchat.errors import ConfigError
from vidchat.model import Role
from vidchat.model.generate import SamplingConfig, generate
from vidchat.model.partner import PartnerSummary
from vidchat.model.vocab import Role as R

HEADS = [("maskgit", "depth"), ("depth", "depth")]


@pytest.fixture(params=HEADS, ids=lambda h: f"video_{h[0]}-audio_{h[1]}")
def layout(request):
    return demo_layout(video_head=request.param[0], audio_head=request.param[1])


def test_kv_cache_generation_equals_full_forward(layout, gen):
    model = depth_model(layout, partner_summary=True).eval()
    batch = prompts(layout, gen)  # two partner turns of different lengths: left padding
    cached = generate(model, layout, batch, max_chunks=1, sampling=SamplingConfig(seed=5))
    full = generate_uncached(model, layout, batch, max_chunks=1, sampling=SamplingConfig(seed=5))
    assert torch.equal(cached.tokens, full.tokens)
    together = generate(model, layout, batch, max_chunks=1, sampling=GREEDY)
    for b, prompt in enumerate(batch):
        alone = generate(model, layout, prompt, max_chunks=1, sampling=GREEDY)
        assert torch.equal(alone.tokens[0], together.tokens[b])


def test_the_summary_reaches_the_answer_and_nothing_before_it(layout, gen):
    """Zeroing the summary's projection changes the predictions from the responder's marker on,
    and none before it."""
    model = depth_model(layout, partner_summary=True).eval()
    torch.nn.init.normal_(model.partner_summary.proj.weight, std=0.5)
    segs = [
        random_segment(layout, Role.PARTNER, 1.0, gen),
        random_segment(layout, Role.RESPONDER, 0.5, gen),
    ]
    seq = layout.build(segs)
    inputs = {**{k: v[None] for k, v in seq.model_inputs().items()}, "modality": seq.modality[None]}
    with torch.no_grad():
        on = model(**inputs)[0]
        model.partner_summary.proj.weight.zero_()
        off = model(**inputs)[0]
    marker = int((seq.roles == int(Role.RESPONDER)).nonzero()[0, 0])
    torch.testing.assert_close(on[:marker], off[:marker])
    assert (on[marker:] - off[marker:]).abs().amax(-1).min() > 1e-4


def test_the_summary_reads_only_the_partner_frames_before_each_turn():
    summary = PartnerSummary(3)
    torch.nn.init.eye_(summary.proj.weight)
    x = torch.arange(2 * 8 * 3, dtype=torch.float).view(2, 8, 3)  # [B,S,D]
    P, S, N = int(R.PARTNER), int(R.RESPONDER), int(R.NONE)
    roles = torch.tensor([[N, int(R.REF), P, P, S, S, P, S], [N, N, P, P, P, S, S, S]])
    video = torch.tensor([[0, 1, 1, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0, 1, 1]]).bool()
    out = summary(x, roles, video)
    torch.testing.assert_close(out[0, 4], x[0, 2])  # the audio step and the reference: not read
    torch.testing.assert_close(out[0, 7], x[0, 6])  # the second turn reads its own partner only
    torch.testing.assert_close(out[1, 5], x[1, 2:5].mean(0))
    starts = {(0, 4), (0, 7), (1, 5)}
    for b in range(2):
        for s in range(8):
            if (b, s) not in starts:
                assert not out[b, s].any()


def test_a_packed_sequence_reads_only_its_own_partner():
    """`stage.batching=pack`: after a `<bos>` the next sequence's answer reads its own partner
    frames, not the previous sequence's trailing ones."""
    summary = PartnerSummary(2)
    torch.nn.init.eye_(summary.proj.weight)
    x = torch.arange(8 * 2, dtype=torch.float).view(1, 8, 2)  # [B,S,D]
    P, S, N = int(R.PARTNER), int(R.RESPONDER), int(R.NONE)
    roles = torch.tensor([[N, P, S, P, N, P, P, S]])  # the first sequence ends on a partner frame
    out = summary(x, roles, roles == P)
    torch.testing.assert_close(out[0, 2], x[0, 1])
    torch.testing.assert_close(out[0, 7], x[0, 5:7].mean(0))


def test_partner_summary_needs_a_grouped_head():
    with pytest.raises(ConfigError, match="partner_summary"):
        depth_model(demo_layout(video_head="flat", audio_head="flat"), partner_summary=True)


def test_full_forward_is_causal(gen):
    layout = demo_layout(video_head="maskgit", audio_head="depth")
    model = depth_model(layout, partner_summary=True).eval()
    segs = [
        random_segment(layout, Role.PARTNER, 1.0, gen),
        random_segment(layout, Role.RESPONDER, 1.0, gen),
    ]
    seq = layout.build(segs)
    inputs = {**{k: v[None] for k, v in seq.model_inputs().items()}, "modality": seq.modality[None]}
    starts = (seq.depth == 0).nonzero()[:, 0]
    with torch.no_grad():
        full = model(**inputs)
        for c in (150, 300):
            cut = int(starts[starts >= c][0])
            prefix = model(**{k: v[:, :cut] for k, v in inputs.items()})
            torch.testing.assert_close(prefix[:, : cut - 1], full[:, : cut - 1])
