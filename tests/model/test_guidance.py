"""Classifier-free guidance (`sampling.guidance`): each token is drawn from `u + s * (c - u)`,
`c` the logits given the partner, `u` those given the reference alone. At s = 0 guided
generation must equal plain generation from the unconditional prompts; the KV cache must equal
the full forward; and every head (flat, depth, MaskGIT frame head) must share the sampled tokens
between both halves."""

import dataclasses

import pytest
import torch
from conftest import demo_layout, random_segment
from test_depth import GREEDY, depth_model
from uncached import generate_uncached

from vidchat.errors import ConfigError
from vidchat.model import Role
from vidchat.model.generate import SamplingConfig, generate

HEADS = [("flat", "flat"), ("depth", "depth"), ("maskgit", "depth")]


@pytest.fixture(params=HEADS, ids=lambda h: f"video_{h[0]}-audio_{h[1]}")
def layout(request):
    return demo_layout(video_head=request.param[0], audio_head=request.param[1])


def with_guidance(sampling: SamplingConfig, scale: float) -> SamplingConfig:
    return dataclasses.replace(sampling, guidance=scale)


def guided_prompts(layout, gen, seconds=(1.0, 0.6)):
    """Prompts with a partner turn each (of two lengths: left padding), and the same references
    alone."""
    refs = [torch.randint(0, 1024, (4, 4), generator=gen) for _ in seconds]
    batch = [
        layout.prompt([random_segment(layout, Role.PARTNER, s, gen)], ref=r)
        for s, r in zip(seconds, refs, strict=True)
    ]
    return batch, [layout.prompt([], ref=r) for r in refs]


@pytest.mark.parametrize("sampling", [GREEDY, SamplingConfig(seed=4)], ids=["greedy", "seeded"])
def test_scale_zero_is_plain_generation_from_the_unconditional_prompts(layout, gen, sampling):
    model = depth_model(layout).eval()
    batch, plain = guided_prompts(layout, gen)
    guided = generate(
        model,
        layout,
        batch,
        max_chunks=2,
        sampling=with_guidance(sampling, 0.0),
        unconditional=plain,
    )
    alone = generate(model, layout, plain, max_chunks=2, sampling=sampling)
    assert torch.equal(guided.tokens, alone.tokens)


def test_guided_cache_equals_full_forward_and_guidance_matters(layout, gen):
    model = depth_model(layout).eval()
    batch, plain = guided_prompts(layout, gen)
    # a fresh model reads its partner only weakly: a large scale makes the difference visible
    sampling = with_guidance(SamplingConfig(seed=5), 10.0)
    cached = generate(model, layout, batch, 2, sampling, unconditional=plain)
    full = generate_uncached(model, layout, batch, 2, sampling, unconditional=plain)
    assert torch.equal(cached.tokens, full.tokens)
    unguided = generate(model, layout, batch, 2, SamplingConfig(seed=5))
    assert not torch.equal(cached.tokens, unguided.tokens)


def test_guidance_needs_the_unconditional_prompts(gen):
    layout = demo_layout(video_head="maskgit", audio_head="depth")
    model = depth_model(layout).eval()
    batch, plain = guided_prompts(layout, gen)
    with pytest.raises(ConfigError, match="needs the unconditional prompts"):
        generate(model, layout, batch, 1, with_guidance(GREEDY, 2.0))
    with pytest.raises(ConfigError, match="2 prompts but 1 unconditional"):
        generate(model, layout, batch, 1, with_guidance(GREEDY, 2.0), unconditional=plain[:1])
    with pytest.raises(ConfigError, match="guidance must be a number >= 0"):
        SamplingConfig.from_dict({"guidance": -1})
