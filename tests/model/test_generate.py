import pytest
import torch
from conftest import random_segment, tiny_model
from uncached import generate_uncached

from vidchat.errors import ConfigError
from vidchat.model import Role, Vocab
from vidchat.model.generate import SamplingConfig, TokenSampling, generate, stream_chunks


def prompts(layout, gen, seconds=(1.0,)):
    ref = torch.randint(0, 1024, (4, 4), generator=gen)
    return [layout.prompt([random_segment(layout, Role.PARTNER, s, gen)], ref) for s in seconds]


def hot_sampling(seed=3):
    # high boundary temperature so some rows end early, top-k/top-p exercised on codes
    return SamplingConfig(
        video=TokenSampling(1.0, top_k=50),
        audio=TokenSampling(0.9, top_p=0.9),
        boundary=TokenSampling(3.0),
        seed=seed,
    )


def test_cache_equals_no_cache_batched_left_padded(layout, gen):
    model = tiny_model(layout)
    p = prompts(layout, gen, seconds=(0.5, 0.25, 0.75))
    a = generate(model, layout, p, max_chunks=2, sampling=hot_sampling())
    b = generate_uncached(model, layout, p, max_chunks=2, sampling=hot_sampling())
    assert torch.equal(a.tokens, b.tokens)
    assert a.num_chunks == b.num_chunks


def test_every_token_in_its_slot_range_and_output_splits(layout, gen):
    model = tiny_model(layout, seed=1)
    p = prompts(layout, gen, seconds=(1.0, 0.5, 1.0, 0.5))
    out = generate(model, layout, p, max_chunks=4, sampling=hot_sampling(seed=5))
    g = layout.responder_grammar(4)
    for b in range(len(p)):
        row = out.tokens[b]
        n = int((row != Vocab.pad).sum())
        assert row[n - 1] == Vocab.eot and bool((row[n:] == Vocab.pad).all())
        assert bool(((row[:n] >= g.lo[:n]) & (row[:n] < g.hi[:n])).all())
        # the generated turn splits back into exactly the returned codes
        seg = layout.split(torch.cat([p[b].tokens, row[:n]])).segments[-1]
        assert seg.role == Role.RESPONDER
        assert torch.equal(seg.video, out.video[b]) and torch.equal(seg.audio, out.audio[b])
        assert out.video[b].shape[0] == 4 * out.num_chunks[b]
        assert out.audio[b].shape == (2, [0, 12, 25, 37, 50][out.num_chunks[b]])
    assert len(set(out.num_chunks)) > 1  # rows ended at different chunks


def test_stream_equals_generate(layout, gen):
    model = tiny_model(layout)
    p = prompts(layout, gen, seconds=(1.0, 0.5))
    whole = generate(model, layout, p, max_chunks=3, sampling=hot_sampling())
    chunks = list(stream_chunks(model, layout, p, max_chunks=3, sampling=hot_sampling()))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for b in range(2):
        mine = [c for c in chunks if c.active[b]]
        assert len(mine) == whole.num_chunks[b]
        assert torch.equal(torch.cat([c.video[b] for c in mine]), whole.video[b])
        assert torch.equal(torch.cat([c.audio[b] for c in mine], 1), whole.audio[b])
    assert chunks[0].video.shape == (2, 4, 4, 4) and chunks[0].audio.shape == (2, 2, 12)


def test_stream_yields_before_the_turn_ends(layout, gen):
    model = tiny_model(layout)
    p = prompts(layout, gen)
    greedy = SamplingConfig(boundary=TokenSampling(0.0))
    it = stream_chunks(model, layout, p, max_chunks=15, sampling=greedy)
    first = next(it)  # the first chunk arrives without generating all 15
    assert first.index == 0 and first.video.shape == (1, 4, 4, 4)
    it.close()


def test_seed_reproducible_and_matters(layout, gen):
    model = tiny_model(layout)
    p = prompts(layout, gen)
    a = generate(model, layout, p, 1, SamplingConfig(seed=1)).tokens
    b = generate(model, layout, p, 1, SamplingConfig(seed=1)).tokens
    c = generate(model, layout, p, 1, SamplingConfig(seed=2)).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_inputs(layout, gen):
    model = tiny_model(layout)
    seq = layout.build([random_segment(layout, Role.RESPONDER, 0.5, gen)])
    with pytest.raises(ValueError, match="must end with <responder>"):
        generate(model, layout, seq, 1)
    with pytest.raises(ConfigError, match="max_seq_len"):
        generate(model, layout, prompts(layout, gen), 1000)
    with pytest.raises(ConfigError, match="top_p"):
        SamplingConfig.from_dict({"video": {"top_p": 0}})
    with pytest.raises(ConfigError, match="unknown sampling keys"):
        SamplingConfig.from_dict({"text": {}})
    assert SamplingConfig.from_dict({"audio": {"top_k": 5}, "seed": 4}).audio.top_k == 5
