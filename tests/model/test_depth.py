"""The depth head: one backbone step per video frame / audio step, the codes inside it emitted
by a small transformer. It must generate exactly what its full forward predicts, obey the
grammar, stream like one-shot generation, and learn."""

import pytest
import torch
from conftest import demo_layout, random_segment
from uncached import generate_uncached

from vidchat.errors import ConfigError
from vidchat.model import Modality, Role, build_model, pad_batch
from vidchat.model.generate import SamplingConfig, generate, stream_chunks
from vidchat.model.heads.maskgit import sample_frame_mask
from vidchat.training.lm.losses import next_token_nll, nll_loss

HEADS = [
    ("depth", "depth"),
    ("depth", "flat"),
    ("flat", "depth"),
    ("maskgit", "depth"),
    ("maskgit", "flat"),
]
GREEDY = SamplingConfig.from_dict(
    {"video": {"temperature": 0}, "audio": {"temperature": 0}, "boundary": {"temperature": 0}}
)


def depth_model(layout, seed=0, **kw):
    """A small model with the layout's heads; a frame head reads the previous frame (`prev`)
    unless told otherwise, and `head` settings go to every head kind."""
    torch.manual_seed(seed)
    head = kw.pop("head", {})
    heads = {"depth": dict(head), "maskgit": {"prev": kw.pop("prev", True), **head}}
    return build_model(
        {"dim": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 2048, "heads": heads, **kw}, layout
    )


def prompts(layout, gen, seconds=(1.0, 0.6)):
    ref = torch.randint(0, 1024, (4, 4), generator=gen)
    return [layout.prompt([random_segment(layout, Role.PARTNER, s, gen)], ref=ref) for s in seconds]


@pytest.fixture(params=HEADS, ids=lambda h: f"video_{h[0]}-audio_{h[1]}")
def heads(request):
    return request.param


def test_backbone_steps_once_per_frame_and_audio_step():
    flat, video, both = (
        demo_layout(video_head=v, audio_head=a)
        for v, a in [("flat", "flat"), ("depth", "flat"), ("depth", "depth")]
    )
    assert flat.plan.steps_per_second() == flat.tokens_per_second == 8 * 16 + 25 * 2 + 2
    assert video.plan.steps_per_second() == 8 + 25 * 2 + 2
    assert both.plan.steps_per_second() == 8 + 25 + 2 and both.plan.step_size("video") == 16
    seq = both.build([random_segment(both, Role.RESPONDER, 1.0, torch.Generator().manual_seed(0))])
    video_codes = seq.modality == Modality.VIDEO
    assert torch.equal(seq.depth[video_codes], (seq.row * 4 + seq.col)[video_codes])
    assert torch.equal(
        seq.depth[seq.modality == Modality.AUDIO], seq.codebook[seq.modality == Modality.AUDIO]
    )
    model = depth_model(both)
    assert {s: type(h).__name__ for s, h in model.heads.items()} == {
        "video": "DepthHead",
        "audio": "DepthHead",
    }
    assert model.stepped and model.heads["video"].size == 16 and model.heads["audio"].size == 2
    assert not depth_model(flat).stepped and not list(depth_model(flat).heads.parameters())


def test_kv_cache_generation_equals_full_forward(heads, gen):
    _cached_equals_full(heads, gen, prev=True)


def test_kv_cache_generation_equals_full_forward_without_the_copy_path(gen):
    _cached_equals_full(("maskgit", "depth"), gen, prev=False)


def _cached_equals_full(heads, gen, prev: bool) -> None:
    layout = demo_layout(video_head=heads[0], audio_head=heads[1])
    model = depth_model(layout, prev=prev).eval()
    batch = prompts(layout, gen)
    cached = generate(model, layout, batch, max_chunks=2, sampling=SamplingConfig(seed=5))
    full = generate_uncached(model, layout, batch, max_chunks=2, sampling=SamplingConfig(seed=5))
    assert torch.equal(cached.tokens, full.tokens)


@pytest.mark.parametrize("video_head", ["depth", "maskgit"])
def test_a_narrow_head_generates_like_its_full_forward(video_head, gen):
    layout = demo_layout(video_head=video_head, audio_head="depth")
    model = depth_model(layout, head={"dim": 32}).eval()
    assert all(h.cfg.dim == 32 and h.out_proj is not None for h in model.heads.values())
    batch = prompts(layout, gen)
    cached = generate(model, layout, batch, max_chunks=2, sampling=SamplingConfig(seed=4))
    full = generate_uncached(model, layout, batch, max_chunks=2, sampling=SamplingConfig(seed=4))
    assert torch.equal(cached.tokens, full.tokens)


def test_full_forward_is_causal_within_and_across_steps(heads, gen):
    layout = demo_layout(video_head=heads[0], audio_head=heads[1])
    model = depth_model(layout).eval()
    segs = [
        random_segment(layout, Role.PARTNER, 1.0, gen),
        random_segment(layout, Role.RESPONDER, 1.0, gen),
    ]
    seq = layout.build(segs)
    inputs = {**{k: v[None] for k, v in seq.model_inputs().items()}, "modality": seq.modality[None]}
    cuts = [37, 150, 210]  # inside and at the edges of frames and audio steps
    if heads[0] == "maskgit":  # a frame's codes see each other: cut between steps only
        starts = (seq.depth == 0).nonzero()[:, 0]
        cuts = [int(starts[starts >= c][0]) for c in cuts]
    with torch.no_grad():
        full = model(**inputs)
        for cut in cuts:
            prefix = model(**{k: v[:, :cut] for k, v in inputs.items()})
            # every position but the prefix's last (which cannot know if its step goes on)
            torch.testing.assert_close(prefix[:, : cut - 1], full[:, : cut - 1])


def test_generated_codes_obey_the_grammar_and_split(heads, gen):
    layout = demo_layout(video_head=heads[0], audio_head=heads[1])
    model = depth_model(layout).eval()
    prompt = prompts(layout, gen, seconds=(1.0,))[0]
    out = generate(model, layout, prompt, max_chunks=3, sampling=SamplingConfig(seed=1))
    grammar = layout.responder_grammar(3)
    toks = out.tokens[0]
    n = toks.numel()
    assert bool(((toks >= grammar.lo[:n]) & (toks < grammar.hi[:n])).all())
    split = layout.split(torch.cat([prompt.tokens, toks]))
    responder = split.segments[-1]
    assert torch.equal(responder.video, out.video[0]) and torch.equal(responder.audio, out.audio[0])


def test_streaming_equals_one_shot(heads, gen):
    layout = demo_layout(video_head=heads[0], audio_head=heads[1])
    model = depth_model(layout).eval()
    batch = prompts(layout, gen)
    whole = generate(model, layout, batch, max_chunks=3, sampling=SamplingConfig(seed=2))
    chunks = list(
        stream_chunks(model, layout, batch, max_chunks=3, sampling=SamplingConfig(seed=2))
    )
    for b in range(2):
        mine = [c for c in chunks if bool(c.active[b])]
        assert torch.equal(torch.cat([c.video[b] for c in mine]), whole.video[b])
        assert torch.equal(torch.cat([c.audio[b] for c in mine], 1), whole.audio[b])


def test_batch_rows_equal_single_runs(heads, gen):
    layout = demo_layout(video_head=heads[0], audio_head=heads[1])
    model = depth_model(layout).eval()
    batch = prompts(layout, gen)
    together = generate(model, layout, batch, max_chunks=2, sampling=GREEDY)
    for b, prompt in enumerate(batch):
        alone = generate(model, layout, prompt, max_chunks=2, sampling=GREEDY)
        assert torch.equal(alone.video[0], together.video[b])
        assert torch.equal(alone.audio[0], together.audio[b])


def test_loss_falls_on_a_tiny_overfit_run(heads, gen):
    layout = demo_layout(video_head=heads[0], audio_head=heads[1])
    model = depth_model(layout).train()
    seqs = [layout.build([random_segment(layout, Role.RESPONDER, 1.0, gen)]) for _ in range(2)]
    batch = pad_batch(seqs, loss_mode="after_ref")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        loss_mask, inputs = batch["loss_mask"], {}
        for head in model.heads.values():  # a frame head guesses a random share of each frame
            drawn, loss_mask = head.training_targets(
                batch, loss_mask, torch.Generator().manual_seed(step), {}
            )
            inputs.update(drawn)
        nll = next_token_nll(
            model,
            batch["tokens"],
            batch["tokens"],
            batch["roles"],
            batch["next_slots"],
            depth=batch["depth"],
            modality=batch["modality"],
            head_inputs=inputs,
        )
        loss = nll_loss(nll, loss_mask, batch["modality"])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_depth_audio_needs_time_major_codebooks():
    with pytest.raises(ConfigError, match="time_major"):
        demo_layout(audio_head="depth", audio_pattern="codebook_major")
    with pytest.raises(ConfigError, match="video_head"):
        demo_layout(video_head="diffusion")
    with pytest.raises(ConfigError, match="serves video only"):
        demo_layout(audio_head="maskgit")


def test_a_depth_model_refuses_a_flat_call(gen):
    layout = demo_layout(video_head="depth")
    model = depth_model(layout).eval()
    seq = layout.build([random_segment(layout, Role.RESPONDER, 0.5, gen)])
    with pytest.raises(ValueError, match="depth"):
        model(seq.tokens[None], seq.roles[None], seq.next_slots[None])
    frame_model = depth_model(demo_layout(video_head="maskgit")).eval()
    with pytest.raises(ValueError, match="modality"):
        frame_model(seq.tokens[None], seq.roles[None], seq.next_slots[None], depth=seq.depth[None])


def test_frame_masks_hide_a_share_of_every_frame_and_nothing_else():
    layout = demo_layout(video_head="maskgit")
    seqs = [
        layout.build(
            [random_segment(layout, Role.RESPONDER, 2.0, torch.Generator().manual_seed(s))]
        )
        for s in range(2)
    ]
    batch = pad_batch(seqs, loss_mode="after_ref")
    hidden = sample_frame_mask(batch["depth"], batch["modality"], torch.Generator().manual_seed(0))
    video = batch["modality"] == Modality.VIDEO
    assert not (hidden & ~video).any()
    frame_id = (batch["depth"] == 0).cumsum(1)  # the step each code belongs to
    shares = [
        float(hidden[video & (frame_id == f)].float().mean()) for f in frame_id[video].unique()
    ]
    assert min(shares) > 0 and max(shares) <= 1 and 0.3 < sum(shares) / len(shares) < 0.9
    again = sample_frame_mask(batch["depth"], batch["modality"], torch.Generator().manual_seed(0))
    assert torch.equal(hidden, again)  # from the step's generator: a resumed run hides the same


def test_frame_links_follow_the_role_and_fall_back_to_the_reference(gen):
    from vidchat.model.frame_links import previous_frames

    layout = demo_layout(video_head="maskgit", audio_head="depth")
    ref = torch.randint(0, 1024, (4, 4), generator=gen)
    seq = layout.build(
        [
            random_segment(layout, Role.PARTNER, 0.5, gen),
            random_segment(layout, Role.RESPONDER, 0.5, gen),
        ],
        ref=ref,
    )
    roles, modality, depth = (x[None] for x in (seq.roles, seq.modality, seq.depth))
    links = previous_frames(roles, modality, depth)[0]
    starts = ((modality[0] == Modality.VIDEO) & (depth[0] == 0)).nonzero()[:, 0].tolist()
    by_role = {}
    for t in starts:
        by_role.setdefault(int(seq.roles[t]), []).append(t)
    ref_start = by_role[int(Role.REF)][0]
    for role in (Role.PARTNER, Role.RESPONDER):
        frames = by_role[int(role)]
        assert len(frames) == 4  # 0.5 s at 8 fps
        assert [int(links[t]) for t in frames] == [ref_start, *frames[:-1]]
    assert int(links[ref_start]) == -1


def test_frame_links_stay_inside_each_packed_sequence(gen):
    """With `stage.batching=pack` a frame of the row's second sequence follows that sequence's
    own frames or reference, as it would alone (and as at generation), never the first's."""
    from vidchat.data.lm_dataset import pack_rows
    from vidchat.model.frame_links import previous_frames

    layout = demo_layout(video_head="maskgit", audio_head="depth")
    seqs = [
        layout.build(
            [
                random_segment(layout, Role.PARTNER, 0.5, gen),
                random_segment(layout, Role.RESPONDER, 0.5, gen),
            ],
            ref=torch.randint(0, 1024, (4, 4), generator=gen),
        )
        for _ in range(2)
    ]
    keys = ("roles", "modality", "depth")
    rows = [{k: getattr(s, k) for k in ("tokens", *keys)} for s in seqs]
    packed = pack_rows(rows, max_len=10_000)
    assert len(packed) == 1
    links = previous_frames(*(packed[0][k][None] for k in keys))[0]
    alone = previous_frames(*(rows[1][k][None] for k in keys))[0]
    first = len(seqs[0].tokens)
    shifted = torch.where(alone >= 0, alone + first, alone)
    assert torch.equal(links[first:], shifted)
    assert torch.equal(links[:first], previous_frames(*(rows[0][k][None] for k in keys))[0])


def test_generation_reads_the_frames_training_reads(gen, monkeypatch):
    """The previous-frame codes a frame head is given while generating are the ones the
    teacher-forced pass gives it for the same sequence."""
    from vidchat.model.frame_links import frame_codes, previous_frames

    layout = demo_layout(video_head="maskgit", audio_head="depth")
    model = depth_model(layout).eval()
    seen = []
    head = model.heads["video"]
    real = head.previous

    def spy(history, size):
        prev = real(history, size)
        seen.append(prev.clone())
        return prev

    monkeypatch.setattr(head, "previous", spy)
    prompt = prompts(layout, gen)[0]
    out = generate(model, layout, prompt, max_chunks=2, sampling=SamplingConfig(seed=3))
    P = prompt.tokens.numel()
    full = torch.cat([prompt.tokens, out.tokens[0]])[None]  # [1,P+N]
    roles = torch.cat([prompt.roles, torch.full_like(out.tokens[0], int(Role.RESPONDER))])[None]
    grammar = layout.responder_grammar(2)
    n = out.tokens.shape[1]
    modality = torch.cat([prompt.modality, grammar.modality[:n]])[None]
    depth = torch.cat([prompt.depth, grammar.depth[:n]])[None]
    links = previous_frames(roles, modality, depth)[0]
    starts = [t for t in range(P, P + n) if modality[0, t] == Modality.VIDEO and depth[0, t] == 0]
    assert len(seen) == len(starts) > 1
    for codes, t in zip(seen, starts, strict=True):
        assert torch.equal(codes[0], frame_codes(full, links[t : t + 1], 16)[0])
