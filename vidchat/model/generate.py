"""Sampling the responder's turn chunk by chunk, with a KV cache.

Public API
----------
- `TokenSampling(temperature=1.0, top_k=0, top_p=1.0)`; temperature 0 = greedy.
- `SamplingConfig(video, audio, boundary, seed=0, refine_steps=8, guidance=1.0)` (`boundary`:
  the `<chunk>`/`<eot>` choice; `guidance` != 1 also needs `unconditional=` prompts);
  `SamplingConfig.from_dict({"video": {...}, "audio": {...}, "boundary": {...}, "seed": 0})`.
  The one home of the sampling options, their defaults and their checks: infer's flags, the web
  demo's sliders and the eval config's `sampling:` all come here (`option_fields`), and a bad
  value is one `ConfigError` naming its key (`sampling.video.top_p must be in (0, 1] ...`).
- `stream_chunks(model, layout, prompt, max_chunks, sampling=None, unconditional=None,
  runner=EAGER)` yields a
  `ResponderChunk(index, video [B,t,h,w], audio [B,K,ta], active [B])` as soon as chunk `index`
  is complete; rows that already ended (`<eot>`) have `active=False` and zero codes.
- `generate(...)` same arguments `-> GenerationResult(tokens [B,N], video [T,h,w] per row,
  audio [K,Ta] per row, num_chunks per row)`.

`prompt` is one `LaidOutSequence` from `SequenceLayout.prompt` (ending in `<responder>`) or a
list of them (left-padded into a batch). Every sampled token lies in the range the layout's
grammar allows at its position, so the output always splits and decodes. Rows stop at `<eot>`
(afterwards they are fed `<pad>`, which no row attends to differently); the loop stops when every
row has ended or `max_chunks` chunks are done. The prompt is prefilled into a KV cache and every
later token is one decode step on it (`vidchat.model.steppers`); the tests hold the uncached
reference it must equal (`tests/model/uncached.py`). `runner` runs the static-shape decode
steps: `EAGER` (the reference) or a compiled `StepRunner` (`vidchat.model.runner`; same tokens,
`tests/model/test_fast_decode.py`).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from threading import Event
from typing import Any

import torch
from torch import Tensor

from vidchat.errors import ConfigError
from vidchat.model.layout import LaidOutSequence, SequenceLayout, pad_batch
from vidchat.model.runner import EAGER, StepRunner
from vidchat.model.steppers import FrameSampling, make_stepper
from vidchat.model.transformer import VidChatLM
from vidchat.model.vocab import Modality, Vocab
from vidchat.utils.typed import convert

TOKEN_KINDS = ("video", "audio", "boundary")
"""The token kinds that each have their own `TokenSampling` in a `SamplingConfig`."""


def _option(default: Any, ok: Callable[[Any], bool] | None, rule: str, doc: str) -> Any:
    """A sampling option: its default, its range (`ok`, said as `rule`; None: any value of its
    type) and its help line, which every front end takes from here (`option_fields`)."""
    return field(default=default, metadata={"option": True, "ok": ok, "rule": rule, "help": doc})


def option_fields(cls: type) -> list[Field]:
    """The options of `TokenSampling` or `SamplingConfig` (its own: seed, refine_steps,
    guidance), each with its `default` and `metadata["help"]`, for a front end to offer."""
    return [f for f in fields(cls) if f.metadata.get("option")]


def _checked(cls: type, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`values` for the options of `cls` converted to their types and checked against their
    ranges; a bad one raises one `ConfigError` naming `where.key`."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {values!r}")
    options = {f.name: f for f in option_fields(cls)}
    unknown = sorted(set(values) - set(options))
    if unknown:
        raise ConfigError(f"unknown {where} keys {unknown}; known: {', '.join(options)}")
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in values.items():
        value = convert(value, hints[name], f"{where}.{name}")
        meta = options[name].metadata
        if value is not None and meta["ok"] is not None and not meta["ok"](value):
            raise ConfigError(f"{where}.{name} must be {meta['rule']}, got {value!r}")
        out[name] = value
    return out


def _settle(obj: Any, where: str) -> None:
    """Convert and check a sampling dataclass's own options in place (see `_checked`)."""
    names = [f.name for f in option_fields(type(obj))]
    for name, value in _checked(type(obj), {n: getattr(obj, n) for n in names}, where).items():
        setattr(obj, name, value)


@dataclass
class TokenSampling:
    """How one kind of token is drawn; every front end's sampling options and their checks."""

    temperature: float = _option(
        1.0, lambda v: v >= 0, "a number >= 0 (0 = greedy)", "softmax temperature (0 = greedy)"
    )
    top_k: int = _option(
        0, lambda v: v >= 0, "an integer >= 0 (0 = all)", "keep the k most likely tokens (0 = off)"
    )
    top_p: float = _option(
        1.0,
        lambda v: 0 < v <= 1,
        "in (0, 1] (1 = all)",
        "keep the smallest set of tokens with this much probability (1 = off)",
    )

    def __post_init__(self) -> None:
        _settle(self, "sampling")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "sampling") -> TokenSampling:
        """`values` (any subset of the options; strings and numbers converted) -> checked
        settings; a bad value is one `ConfigError` naming `where.key`."""
        return cls(**_checked(cls, values, where))


@dataclass
class SamplingConfig:
    """Every sampling option of a generation: the single source of their defaults and checks.
    Infer's flags, the web demo's sliders and `configs/eval.yaml`'s `sampling:` all build one
    with `from_dict`, so a value is accepted or refused with the same message everywhere.

    `guidance` `s`: every token is drawn from `u + s * (c - u)`, `c` the logits given the
    partner, `u` those of the same answer given only the reference (the prompt without the
    partner, as the `single` branch trains it)."""

    video: TokenSampling = field(default_factory=TokenSampling)
    """Settings for video code tokens."""
    audio: TokenSampling = field(default_factory=TokenSampling)
    """Settings for audio code tokens."""
    boundary: TokenSampling = field(default_factory=TokenSampling)
    """Settings for the `<chunk>` / `<eot>` decision at chunk boundaries."""
    seed: int | None = _option(
        0,
        None,
        "an integer or null",
        "seed of the sampling generator (the same seed, the same answer)",
    )
    refine_steps: int = _option(
        8,
        lambda v: v >= 1,
        "an integer >= 1",
        "passes per video frame of a head that decides whole frames in passes (the frame head)",
    )
    guidance: float = _option(
        1.0,
        lambda v: v >= 0,
        "a number >= 0 (1 = off)",
        "classifier-free guidance scale over the partner (1 = off; costs a second pass)",
    )

    def __post_init__(self) -> None:
        _settle(self, "sampling")

    @property
    def guided(self) -> bool:
        return self.guidance != 1.0

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> SamplingConfig:
        """`{"video": {...}, "audio": {...}, "boundary": {...}, "seed": 0, ...}` (any subset;
        strings and numbers converted) -> a checked config; a bad value is one `ConfigError`
        naming its key (`sampling.video.temperature must be ...`)."""
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"sampling must be a mapping, got {cfg!r}")
        cfg = dict(cfg)
        known = (*TOKEN_KINDS, *(f.name for f in option_fields(cls)))
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ConfigError(f"unknown sampling keys {unknown}; known: {', '.join(known)}")
        parts = {
            k: TokenSampling.from_dict(cfg.pop(k), f"sampling.{k}") for k in TOKEN_KINDS if k in cfg
        }
        return cls(**parts, **_checked(cls, cfg, "sampling"))

    def for_modality(self, modality: int) -> TokenSampling:
        return {Modality.VIDEO: self.video, Modality.AUDIO: self.audio}.get(modality, self.boundary)


@dataclass
class ResponderChunk:
    index: int
    video: Tensor  # [B,t,h,w] codes
    audio: Tensor  # [B,K,ta] codes
    active: Tensor  # [B] bool: False for rows that had already ended


@dataclass
class GenerationResult:
    tokens: Tensor  # [B,N] generated tokens (after <responder>), <pad> after a row's <eot>
    video: list[Tensor]  # per row [T,h,w]
    audio: list[Tensor]  # per row [K,Ta]
    num_chunks: list[int]


def sample(
    logits: Tensor, s: TokenSampling, generator: torch.Generator | None, gumbel: bool = False
) -> Tensor:
    """logits `[B,n]` -> indices `[B]` with temperature / top-k / top-p. `gumbel`: draw by the
    Gumbel-max trick (the same distribution; far faster than `multinomial` for the many rows
    of a frame head's pass)."""
    if s.temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / s.temperature
    if 0 < s.top_k < logits.shape[-1]:
        kth = logits.topk(s.top_k, dim=-1).values[:, -1:]  # [B,1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1:
        sorted_logits, order = logits.sort(-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= s.top_p  # keep up to and including crossing
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    if gumbel:
        u = torch.rand(logits.shape, generator=generator, device=logits.device)
        return (logits - torch.log(-torch.log(u.clamp(1e-20, 1.0)))).argmax(-1)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


Prompts = LaidOutSequence | Sequence[LaidOutSequence]


def _seqs(prompt: Prompts) -> list[LaidOutSequence]:
    seqs = [prompt] if isinstance(prompt, LaidOutSequence) else list(prompt)
    for s in seqs:
        if int(s.tokens[-1]) != Vocab.responder:
            raise ValueError(
                "a generation prompt must end with <responder> (use SequenceLayout.prompt)"
            )
    return seqs


def _batch(
    prompt: Prompts, unconditional: Prompts | None, sampling: SamplingConfig
) -> tuple[dict[str, Tensor], int]:
    """The prompts left-padded into one batch and the number `B` of answers; with guidance,
    rows `B..2B-1` are the unconditional prompts, which share every sampled token."""
    seqs = _seqs(prompt)
    if not sampling.guided:
        return pad_batch(seqs, side="left"), len(seqs)
    if unconditional is None:
        raise ConfigError(
            f"sampling.guidance={sampling.guidance:g} needs the unconditional prompts "
            "(the same answers' prompts without the partner)"
        )
    plain = _seqs(unconditional)
    if len(plain) != len(seqs):
        raise ConfigError(f"{len(seqs)} prompts but {len(plain)} unconditional prompts")
    return pad_batch(seqs + plain, side="left"), len(seqs)


def guide(scale: float, answers: int) -> Callable[[Tensor], Tensor]:
    """Classifier-free guidance over rows: logits `[2B,...]` (conditional rows, then
    unconditional) -> `u + scale * (c - u)` `[B,...]` (on raw logits, as LlamaGen does)."""

    def combine(logits: Tensor) -> Tensor:
        c, u = logits[:answers], logits[answers:]
        return u + scale * (c - u)

    return combine


@torch.inference_mode()
def stream_chunks(
    model: VidChatLM,
    layout: SequenceLayout,
    prompt: LaidOutSequence | Sequence[LaidOutSequence],
    max_chunks: int,
    sampling: SamplingConfig | None = None,
    unconditional: Prompts | None = None,
    runner: StepRunner = EAGER,
    stop: Event | None = None,
    fixed_audio: Tensor | None = None,
) -> Iterator[ResponderChunk]:
    """Yield each responder chunk's codes as soon as it is complete (see the module docstring).

    stop: set from another thread to end the answer between two tokens (a live caller cancels a
    chunk in flight when its partner speaks again; waiting for the chunk's end would cost a
    whole chunk of compute).
    fixed_audio: `[K]` codes every audio step takes (`ResponderGrammar.with_audio`: with the
    codec's silence, a listening turn)."""
    steps = _decode(model, layout, prompt, max_chunks, sampling, unconditional, runner, fixed_audio)
    for _, chunk in steps:
        if stop is not None and stop.is_set():
            return
        if chunk is not None:
            yield chunk


@torch.inference_mode()
def generate(
    model: VidChatLM,
    layout: SequenceLayout,
    prompt: LaidOutSequence | Sequence[LaidOutSequence],
    max_chunks: int,
    sampling: SamplingConfig | None = None,
    unconditional: Prompts | None = None,
    runner: StepRunner = EAGER,
) -> GenerationResult:
    """Generate whole responder turns; the concatenation of `stream_chunks`' chunks."""
    chunks: list[ResponderChunk] = []
    tokens = None
    for generated, chunk in _decode(
        model, layout, prompt, max_chunks, sampling, unconditional, runner
    ):
        tokens = generated  # [B,n]: the latest view of the generated tokens
        if chunk is not None:
            chunks.append(chunk)
    B = tokens.shape[0]
    h, w = layout.cfg.video_grid
    video, audio, counts = [], [], []
    for b in range(B):
        mine = [c for c in chunks if bool(c.active[b])]
        counts.append(len(mine))
        video.append(torch.cat([c.video[b] for c in mine]) if mine else tokens.new_zeros(0, h, w))
        audio.append(
            torch.cat([c.audio[b] for c in mine], 1) if mine else tokens.new_zeros(layout.K, 0)
        )
    return GenerationResult(tokens, video, audio, counts)


def _decode(
    model, layout, prompt, max_chunks, sampling, unconditional=None, runner=EAGER, fixed_audio=None
):
    """Yield `(generated tokens [B,n], completed chunk or None)` after every sampled token."""
    sampling = sampling or SamplingConfig()
    device = model.embed_tokens.weight.device
    batch, B = _batch(prompt, unconditional, sampling)
    batch = {k: v.to(device) for k, v in batch.items()}
    grammar = layout.responder_grammar(max_chunks)
    if fixed_audio is not None:
        grammar = grammar.with_audio(fixed_audio, layout.vocab)
    P, N = batch["tokens"].shape[1], len(grammar)
    combine = guide(sampling.guidance, B) if sampling.guided else (lambda logits: logits)
    rows = 2 if sampling.guided else 1  # the unconditional rows copy each sampled token
    generator = None
    if sampling.seed is not None:
        generator = torch.Generator(device=device).manual_seed(sampling.seed)
    frames = FrameSampling(
        lambda logits: sample(logits, sampling.video, generator, gumbel=True),
        sampling.refine_steps,
        combine if sampling.guided else None,
        runner,
    )
    stepper = make_stepper(model, batch, grammar, frames)
    # python-side schedule: no tensor -> int syncs inside the loop
    lo, hi = grammar.lo.tolist(), grammar.hi.tolist()
    chunk_end = {start - 1: i - 1 for i, start in enumerate(grammar.chunk_starts) if i > 0}
    settings = [sampling.for_modality(m) for m in grammar.modality.tolist()]
    seq = stepper.seq
    logits = stepper.first()  # [rows*B,V]
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    for n in range(N):
        tok = stepper.forced(n)  # a frame head decides a whole frame at once
        if tok is None:
            tok = sample(combine(logits[:, lo[n] : hi[n]]), settings[n], generator) + lo[n]
        tok = tok[:B].masked_fill(ended, Vocab.pad)  # [B]
        i = P + n
        seq.tokens[:, i] = tok.repeat(rows)
        if lo[n] == Vocab.eot:  # a chunk boundary: rows choosing <eot> end here
            ended = ended | (tok == Vocab.eot)
        chunk = None
        if n in chunk_end:
            start = P + grammar.chunk_starts[chunk_end[n]] + 1
            chunk = _chunk(layout, chunk_end[n], seq.tokens[:B, start : i + 1], ended)
        yield seq.tokens[:B, P : i + 1], chunk
        if n + 1 == N or (lo[n] == Vocab.eot and bool(ended.all())):
            return
        logits = stepper.next(n)


def _chunk(layout: SequenceLayout, index: int, codes: Tensor, ended: Tensor) -> ResponderChunk:
    """Chunk `index`'s generated code tokens `[B,n]` -> video `[B,t,h,w]`, audio `[B,K,ta]`,
    each code placed where the token plan says its position holds."""
    B = codes.shape[0]
    (v0, v1), (a0, a1) = layout.chunk_span(index)
    plan = layout.plan.chunk((v0, v1), (a0, a1))
    dev = codes.device
    v, a = plan.is_video.to(dev), (~plan.is_video).to(dev)
    video = codes.new_zeros(B, v1 - v0, layout.h, layout.w)
    frame, row, col = (x.to(dev) for x in (plan.frame, plan.row, plan.col))
    video[:, frame[v] - v0, row[v], col[v]] = codes[:, v] - layout.vocab.video_offset
    book = plan.codebook.to(dev)[a]
    audio = codes.new_zeros(B, layout.K, a1 - a0)
    raw = codes[:, a] - layout.vocab.audio_offset(0) - book * layout.cfg.audio_codebook_size
    audio[:, book, frame[a] - a0] = raw
    keep = (~ended).view(B, 1, 1)
    return ResponderChunk(index, video * keep.unsqueeze(-1), audio * keep, ~ended)
