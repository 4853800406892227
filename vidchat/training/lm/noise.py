"""Noise injection: corrupt context code tokens of the *input* during training.

At generation time the model conditions on its own (imperfect) earlier tokens; training only on
clean teacher-forced context lets small errors snowball into drift. The paper credits noise on
the visual context with less drift (FID 35.67 -> 32.35). Here a fraction of the input's code
tokens is replaced by random codes from the same range (video codebook, or the same audio
codebook), so a noised token stays a valid token of its kind. Targets stay clean: the loss is
computed against the original tokens. Special tokens and the reference frame are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vidchat.errors import ConfigError
from vidchat.model.vocab import Modality, Role, Vocab

ROLE_NAMES = {"partner": Role.PARTNER, "responder": Role.RESPONDER}
MODALITY_NAMES = {"video": Modality.VIDEO, "audio": Modality.AUDIO}


@dataclass(frozen=True)
class NoiseConfig:
    """`stage.noise` settings."""

    ratio: float = 0.0
    """Fraction of eligible context tokens replaced (0 disables noise injection)."""
    random_ratio: bool = True
    """Draw each sequence's ratio uniformly from [0, ratio], so the model also sees clean context."""
    roles: tuple[str, ...] = ("partner", "responder")
    """Whose tokens may be noised (the reference frame never is)."""
    modalities: tuple[str, ...] = ("video", "audio")
    """Which code streams may be noised."""
    stranger_partner: float = 0.0
    """Probability that a sequence's whole partner video becomes random codes: a partner unlike
    any in the data, so that the responder learns to take its face from the reference and its
    own frames, not from the partner's (identity on real partners, issue #11)."""
    copy_dropout: float = 0.0
    """Share of video frames a frame head trains without its copy path from the previous frame
    (`vidchat.model.heads.maskgit.sample_copy_cut`): the backbone must then know the face."""

    def __post_init__(self) -> None:
        for name in ("ratio", "stranger_partner", "copy_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"stage.noise.{name} must be in [0, 1], got {value}")
        for name, known, values in (
            ("roles", ROLE_NAMES, self.roles),
            ("modalities", MODALITY_NAMES, self.modalities),
        ):
            bad = sorted(set(values) - set(known))
            if bad:
                raise ConfigError(
                    f"stage.noise.{name} has unknown value(s) {bad}; known: {sorted(known)}"
                )
        object.__setattr__(self, "roles", tuple(self.roles))
        object.__setattr__(self, "modalities", tuple(self.modalities))


def eligible_positions(roles: Tensor, modality: Tensor, valid: Tensor, cfg: NoiseConfig) -> Tensor:
    """`[B,L]` bool: code tokens of the configured roles and modalities (never specials, ref, pad)."""
    role_ok = torch.zeros_like(valid)
    for name in cfg.roles:
        role_ok |= roles == int(ROLE_NAMES[name])
    mod_ok = torch.zeros_like(valid)
    for name in cfg.modalities:
        mod_ok |= modality == int(MODALITY_NAMES[name])
    return role_ok & mod_ok & valid


def token_ranges(
    tokens: Tensor, modality: Tensor, codebook: Tensor, vocab: Vocab
) -> tuple[Tensor, Tensor]:
    """`[B,L]` half-open [lo, hi) of each token's own code range (video, or its audio codebook)."""
    lo = torch.zeros_like(tokens)
    hi = torch.zeros_like(tokens)
    is_video = modality == int(Modality.VIDEO)
    lo[is_video], hi[is_video] = vocab.video_range
    is_audio = modality == int(Modality.AUDIO)
    book = codebook.clamp(min=0)
    lo = torch.where(is_audio, vocab.audio_offset(0) + book * vocab.audio_codebook_size, lo)
    hi = torch.where(is_audio, lo + vocab.audio_codebook_size, hi)
    return lo, hi


def inject_noise(
    tokens: Tensor,
    roles: Tensor,
    modality: Tensor,
    codebook: Tensor,
    valid: Tensor,
    vocab: Vocab,
    cfg: NoiseConfig,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Return (noised tokens `[B,L]`, noised-position mask `[B,L]` bool); inputs are not modified.

    All arguments are `[B,L]` (see `pad_batch`); `generator` makes the noise reproducible.
    """
    if cfg.ratio <= 0 and cfg.stranger_partner <= 0:
        return tokens, torch.zeros_like(valid)
    B, L = tokens.shape
    device = tokens.device
    ratio = torch.full((B, 1), cfg.ratio, device=device)
    if cfg.random_ratio:
        ratio = ratio * torch.rand((B, 1), generator=generator, device=device)
    chosen = torch.rand((B, L), generator=generator, device=device) < ratio
    chosen &= eligible_positions(roles, modality, valid, cfg)
    if cfg.stranger_partner > 0:
        stranger = torch.rand((B, 1), generator=generator, device=device) < cfg.stranger_partner
        partner_video = (roles == int(Role.PARTNER)) & (modality == int(Modality.VIDEO)) & valid
        chosen |= stranger & partner_video
    lo, hi = token_ranges(tokens, modality, codebook, vocab)
    u = torch.rand((B, L), generator=generator, device=device)
    random_tokens = lo + (u * (hi - lo).clamp(min=1)).long().clamp(max=(hi - lo - 1).clamp(min=0))
    return torch.where(chosen, random_tokens, tokens), chosen


def parse_noise(stage_noise: object | None) -> NoiseConfig:
    """`stage.noise` (mapping or None) -> `NoiseConfig`, rejecting unknown keys."""
    if stage_noise is None:
        return NoiseConfig()
    data = dict(stage_noise)  # type: ignore[call-overload]
    known = set(NoiseConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"stage.noise has unknown key(s) {unknown}; known: {sorted(known)}")
    for key in ("roles", "modalities"):
        if key in data and isinstance(data[key], Sequence) and not isinstance(data[key], str):
            data[key] = tuple(data[key])
    return NoiseConfig(**data)
