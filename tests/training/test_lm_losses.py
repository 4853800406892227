"""The LM's training losses (`vidchat.training.lm.losses`): `next_token_nll` scores the clean
targets exactly as cross-entropy over the model's full forward does, for every head; and the
chunked output head + cross-entropy (`model.loss_chunk`) is the plain loss: the same
per-position NLL and the same gradients, while only one chunk's logits exist at a time."""

import pytest
import torch
import torch.nn.functional as F

import vidchat.training.lm.losses as lm_losses
from vidchat.model import (
    LayoutConfig,
    Modality,
    Role,
    Segment,
    SequenceLayout,
    build_model,
    pad_batch,
)
from vidchat.model.heads.maskgit import sample_frame_mask
from vidchat.training.lm.losses import linear_cross_entropy, next_token_nll
from vidchat.training.lm.module import LMTrainingModule
from vidchat.training.lm.noise import NoiseConfig
from vidchat.training.optim import OptimConfig

pytestmark = pytest.mark.timeout(120)

HEADS = [
    ("flat", "flat"),
    ("depth", "depth"),
    ("depth", "flat"),
    ("flat", "depth"),
    ("maskgit", "depth"),
    ("maskgit", "flat"),
]


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _layout(video_head="flat", audio_head="flat") -> SequenceLayout:
    """The demo tokenizers' layout: video 4x4 codes at 8 fps, audio 2x1024 at 25 Hz."""
    return SequenceLayout(
        LayoutConfig(8, (4, 4), 1024, 25, 2, 1024, video_head=video_head, audio_head=audio_head)
    )


def _model(layout):
    torch.manual_seed(0)
    heads = {"depth": {}, "maskgit": {"prev": True}}
    cfg = {"dim": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 2048, "heads": heads}
    return build_model(cfg, layout)


def _batch(layout, gen):
    c = layout.cfg
    segments = []
    for seconds in (1.0, 0.6):
        T, Ta = round(seconds * c.video_frame_rate), round(seconds * c.audio_frame_rate)
        video = torch.randint(0, c.video_codebook_size, (T, *c.video_grid), generator=gen)
        audio = torch.randint(0, c.audio_codebook_size, (c.audio_num_codebooks, Ta), generator=gen)
        segments.append(Segment(Role.RESPONDER, video, audio))
    return pad_batch([layout.build([s]) for s in segments], loss_mode="after_ref")


@pytest.mark.parametrize("video_head, audio_head", HEADS)
def test_nll_equals_the_cross_entropy_of_the_logits(video_head, audio_head, gen):
    """`next_token_nll` (the training loss path, which never holds [B,L,V] logits for a head)
    scores the clean targets exactly as cross-entropy over the full forward's logits does, also
    when the input tokens were noised."""
    layout = _layout(video_head, audio_head)
    model = _model(layout).train()
    batch = _batch(layout, gen)
    noised = batch["tokens"].clone()
    codes = batch["modality"] == Modality.VIDEO
    noised[codes] = torch.randint(0, 1024, (int(codes.sum()),), generator=gen) + int(
        layout.vocab.video_range[0]
    )
    extra = {}
    if model.stepped:
        hidden = sample_frame_mask(batch["depth"], batch["modality"], gen)
        extra = dict(
            depth=batch["depth"],
            modality=batch["modality"],
            head_inputs={"video/frame_mask": hidden},
        )
    logits = model(noised, batch["roles"], batch["next_slots"], **extra)
    expected = F.cross_entropy(
        logits[:, :-1].transpose(1, 2), batch["tokens"][:, 1:], reduction="none"
    )
    nll = next_token_nll(
        model, noised, batch["tokens"], batch["roles"], batch["next_slots"], **extra
    )
    assert nll.shape == expected.shape
    torch.testing.assert_close(nll, expected, rtol=1e-5, atol=1e-5)
    nll.sum().backward()  # and it trains
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def _loss_and_grads(model, batch, chunk):
    model.zero_grad(set_to_none=True)
    nll = next_token_nll(
        model, batch["tokens"], batch["tokens"], batch["roles"], batch["next_slots"], chunk=chunk
    )
    loss = (nll * batch["loss_mask"][:, 1:]).sum() / batch["loss_mask"][:, 1:].sum()
    loss.backward()
    return nll.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [1, 37, 10_000])
def test_chunked_nll_and_gradients_equal_the_plain_ones(gen, chunk):
    layout = _layout()
    model = _model(layout).train()
    batch = _batch(layout, gen)
    plain_nll, plain = _loss_and_grads(model, batch, None)
    nll, grads = _loss_and_grads(model, batch, chunk)
    torch.testing.assert_close(nll, plain_nll, rtol=0, atol=1e-5)
    for name, g in grads.items():  # the head's gradient sums the chunks in another order
        torch.testing.assert_close(g, plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_no_logits_are_saved_for_backward():
    """Plain: the logits of every position stay alive until backward. Chunked: autograd keeps
    only the chunks' inputs (hidden states, the weight); backward recomputes one chunk's logits
    at a time."""
    torch.manual_seed(0)
    hidden = torch.randn(512, 16, requires_grad=True)
    weight = torch.randn(1000, 16, requires_grad=True)
    targets = torch.randint(0, 1000, (512,))
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    for chunk in (None, 64):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = linear_cross_entropy(hidden, weight, targets, chunk).mean()
        biggest = max(saved)
        assert biggest >= 512 * 1000 if chunk is None else biggest <= 1000 * 16, (chunk, biggest)
        loss.backward()
    ref = F.cross_entropy(hidden @ weight.T, targets, reduction="none")
    torch.testing.assert_close(linear_cross_entropy(hidden, weight, targets, 64), ref)


def test_the_training_module_applies_loss_chunk(gen, monkeypatch):
    """`model.loss_chunk` reaches the loss through `LMTrainingModule(loss_chunk=)`, and the
    losses are those without it."""
    seen = []

    def recording(hidden, weight, targets, chunk=None):
        seen.append(chunk)
        return linear_cross_entropy(hidden, weight, targets, chunk)

    monkeypatch.setattr(lm_losses, "linear_cross_entropy", recording)
    layout = _layout()
    model, batch = _model(layout), _batch(layout, gen)
    out = {}
    for chunk in (None, 7):
        module = LMTrainingModule(
            model, layout, optim=OptimConfig(), noise=NoiseConfig(), total_steps=1, loss_chunk=chunk
        )
        out[chunk] = module.losses(batch, None, torch.Generator().manual_seed(0))
    assert seen == [None, 7]
    for key in ("loss", "video_loss", "audio_loss", "loss_sum"):
        torch.testing.assert_close(out[7][key], out[None][key], rtol=1e-6, atol=1e-5)
