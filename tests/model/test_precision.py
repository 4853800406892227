"""Reduced precision: every head and option trains and generates under bf16 autocast
(`trainer.precision=bf16-mixed`) and with bf16 weights (DeepSpeed's `bf16`, `infer.py --dtype
bfloat16`), and stays close to fp32.

Before the dtype fixes, the partner summary crashed under autocast (an index put of bf16 values
into an fp32 buffer) and attention crashed with bf16 weights (RoPE's fp32 tables promoted q and
k to fp32 beside a bf16 v)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from conftest import demo_layout, random_segment
from test_depth import depth_model, prompts

from vidchat.model import Role, Vocab, pad_batch
from vidchat.model.generate import SamplingConfig, generate
from vidchat.training.lm.module import LMTrainingModule
from vidchat.training.lm.noise import NoiseConfig, inject_noise
from vidchat.training.optim import OptimConfig

pytestmark = pytest.mark.timeout(120)

# (video head, audio head, model options): every head, the partner summary, the copy path, a
# narrow head
VARIANTS = {
    "flat": ("flat", "flat", {}),
    "depth": ("depth", "depth", {}),
    "depth-summary": ("depth", "depth", {"partner_summary": True}),
    "maskgit-copy": ("maskgit", "depth", {"prev": True}),
    "maskgit-nocopy": ("maskgit", "depth", {"prev": False}),
    "maskgit-copy-summary-narrow": (
        "maskgit",
        "depth",
        {"prev": True, "partner_summary": True, "head": {"dim": 32}},
    ),
}
# Everything that touches the inputs during training: token noise, a stranger partner, copy dropout
NOISE = NoiseConfig(ratio=0.3, stranger_partner=0.5, copy_dropout=0.5)
MODES = ("autocast", "bf16_weights")


def precision(mode: str):
    """The context a step runs in: bf16 autocast over fp32 weights, or nothing (bf16 weights)."""
    if mode == "autocast":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def variant_model(name: str, mode: str | None, seed: int = 0):
    video, audio, options = VARIANTS[name]
    layout = demo_layout(video_head=video, audio_head=audio)
    model = depth_model(layout, seed=seed, **options)
    if mode == "bf16_weights":
        model = model.to(torch.bfloat16)
    return layout, model


def dialogue_batch(layout, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two reference + partner turn + answer sequences of different lengths (padding)."""
    g = torch.Generator().manual_seed(seed)
    ref = torch.randint(0, 1024, (4, 4), generator=g)
    seqs = [
        layout.build(
            [
                random_segment(layout, Role.PARTNER, p, g),
                random_segment(layout, Role.RESPONDER, r, g),
            ],
            ref=ref,
        )
        for p, r in ((1.0, 0.5), (0.5, 0.5))
    ]
    return pad_batch(seqs, loss_mode="after_ref")


def training_loss(model, layout, batch, seed: int = 0) -> torch.Tensor:
    """One training step's loss, as `LMTrainingModule.training_step` computes it (noise
    injection, frame masks, copy dropout)."""
    module = LMTrainingModule(model, layout, optim=OptimConfig(), noise=NOISE, total_steps=1)
    g = torch.Generator().manual_seed(seed)
    noised, _ = inject_noise(
        batch["tokens"],
        batch["roles"],
        batch["modality"],
        batch["codebook"],
        batch["valid"],
        layout.vocab,
        NOISE,
        g,
    )
    return module.losses(batch, noised, g, training=True)["loss"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_training_step_runs_and_stays_close_to_fp32(name, mode):
    layout, reference_model = variant_model(name, None)
    batch = dialogue_batch(layout)
    with torch.no_grad():
        reference = training_loss(reference_model.train(), layout, batch)
    _, model = variant_model(name, mode)
    model.train()
    with precision(mode):
        loss = training_loss(model, layout, batch)
    loss.backward()
    assert loss.dtype == torch.float32  # the loss is reduced in fp32 whatever the weights
    loss_value, want = float(loss.detach()), float(reference)
    assert abs(loss_value - want) < 0.02 * want, (loss_value, want)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g.float()).all() for g in grads)
    if "summary" in name:  # the summary's projection learns in reduced precision too
        assert model.partner_summary.proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cached_generation_runs_and_its_logits_stay_close_to_fp32(name, mode):
    layout, model = variant_model(name, mode)
    model.eval()
    batch = prompts(layout, torch.Generator().manual_seed(1))
    with precision(mode), torch.no_grad():
        out = generate(model, layout, batch, max_chunks=1, sampling=SamplingConfig(seed=3))
    grammar = layout.responder_grammar(1)
    for row in out.tokens:  # a whole chunk, every code inside its slot's range
        n = int((row != Vocab.pad).sum())
        assert n == len(grammar) and row[n - 1] == Vocab.eot
        assert bool(((row[:n] >= grammar.lo[:n]) & (row[:n] < grammar.hi[:n])).all())
    # teacher-forced logits of the same sequences, reduced precision against fp32
    _, fp32 = variant_model(name, None)
    inputs = _forward_inputs(layout, dialogue_batch(layout, seed=2))
    with torch.no_grad():
        want = fp32.eval()(**inputs).float()
        with precision(mode):
            got = model(**inputs).float()
    # bf16 keeps 8 bits of mantissa: logits within a few percent of their spread
    error = (got - want).abs() / want.std()
    assert error.mean() < 0.03 and error.amax() < 0.3, (float(error.mean()), float(error.amax()))


def _forward_inputs(layout, batch) -> dict[str, torch.Tensor]:
    inputs = {
        "tokens": batch["tokens"],
        "roles": batch["roles"],
        "slots": batch["next_slots"],
        "valid": batch["valid"],
    }
    if layout.cfg.grouped("video") or layout.cfg.grouped("audio"):
        inputs.update(depth=batch["depth"], modality=batch["modality"])
    return inputs


def test_the_kv_cache_holds_the_compute_dtype():
    """Under autocast the cache holds bf16 keys (what attention computes), not the fp32 weights'
    dtype: half the memory, and one dtype beside the queries."""
    _, model = variant_model("depth-summary", None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.new_cache(1, 16).k[0].dtype == torch.bfloat16
        assert model.heads["audio"].new_cache(1).k[0].dtype == torch.bfloat16
    assert model.new_cache(1, 16).k[0].dtype == torch.float32
    assert model.to(torch.bfloat16).new_cache(1, 16).k[0].dtype == torch.bfloat16
