"""Per-frame 2D VQ autoencoder for video: frames `[B,T,H,W,3]` uint8 <-> codes `[B,T,h,w]`.

Architecture only: a compact conv encoder (one stride-2 stage per halving), a quantiser (EMA VQ or
FSQ, chosen by config) and a mirrored conv decoder. Training lives in `vidchat.training.tokenizer_modules`.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import torch
from einops import rearrange
from torch import nn

from vidchat.errors import VidchatError
from vidchat.tokenizers.base import TokenizerSpec, VideoTokenizer
from vidchat.tokenizers.checkpoint import (
    file_fingerprint,
    load_checkpoint,
    save_checkpoint,
    weights_path,
)
from vidchat.tokenizers.quantizers import QuantizerOutput, build_quantizer


@dataclass
class VQVideoConfig:
    """Hyper-parameters of the video VQ autoencoder (saved in the checkpoint JSON).

    frame_size: input frames are frame_size x frame_size pixels.
    fps: frame rate the tokenizer is trained for (its TokenizerSpec.frame_rate).
    downsample: frame_size / downsample codes per side (a power of two).
    channels: conv width per resolution stage, highest resolution first (len = log2(downsample)).
    quantizer: "vq" (EMA codebook) or "fsq"; codebook_size/code_dim for vq, fsq_levels for fsq.
    """

    frame_size: int = 32
    fps: float = 8.0
    downsample: int = 8
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    res_blocks: int = 1
    quantizer: str = "vq"
    codebook_size: int = 1024
    code_dim: int = 32
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])
    ema_decay: float = 0.95
    commitment: float = 0.25
    dead_threshold: float = 0.5
    kmeans_init: bool = True

    def __post_init__(self) -> None:
        stages = int(math.log2(self.downsample))
        if 2**stages != self.downsample or len(self.channels) != stages:
            raise ValueError(
                f"video tokenizer: downsample={self.downsample} needs a power of two and "
                f"{stages} channel stages, got channels={self.channels}"
            )
        if self.frame_size % self.downsample:
            raise ValueError(
                f"frame_size={self.frame_size} not divisible by downsample={self.downsample}"
            )


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _encoder(cfg: VQVideoConfig, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, cfg.channels[0], 3, padding=1)]
    prev = cfg.channels[0]
    for ch in cfg.channels:
        layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1)]
        layers += [ResBlock(ch) for _ in range(cfg.res_blocks)]
        prev = ch
    layers += [nn.GroupNorm(8, prev), nn.SiLU(), nn.Conv2d(prev, out_dim, 1)]
    return nn.Sequential(*layers)


def _decoder(cfg: VQVideoConfig, in_dim: int) -> nn.Sequential:
    chans = list(reversed(cfg.channels))
    layers: list[nn.Module] = [nn.Conv2d(in_dim, chans[0], 3, padding=1)]
    prev = chans[0]
    for ch in chans:
        layers += [ResBlock(prev) for _ in range(cfg.res_blocks)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(prev, ch, 3, padding=1)]
        prev = ch
    layers += [nn.GroupNorm(8, prev), nn.SiLU(), nn.Conv2d(prev, 3, 3, padding=1)]
    return nn.Sequential(*layers)


class VQVideoTokenizer(VideoTokenizer):
    """Frames in [0,255] -> per-frame grid of codes from one codebook."""

    def __init__(self, cfg: VQVideoConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.code_dim if cfg.quantizer == "vq" else len(cfg.fsq_levels)
        self.encoder = _encoder(cfg, dim)
        self.quantizer = build_quantizer(
            cfg.quantizer,
            cfg.codebook_size,
            dim,
            **(
                {"levels": cfg.fsq_levels}
                if cfg.quantizer == "fsq"
                else dict(
                    decay=cfg.ema_decay,
                    commitment=cfg.commitment,
                    dead_threshold=cfg.dead_threshold,
                    kmeans_init=cfg.kmeans_init,
                )
            ),
        )
        self.decoder = _decoder(cfg, dim)
        side = cfg.frame_size // cfg.downsample
        self.spec = TokenizerSpec(
            modality="video",
            frame_rate=float(cfg.fps),
            num_codebooks=1,
            codebook_size=int(self.quantizer.codebook_size),
            grid=(side, side),
            frame_size=(cfg.frame_size, cfg.frame_size),
        )

    # --- continuous path (training) -------------------------------------------------------
    def quantize_images(self, images: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        """images `[N,3,H,W]` in [-1,1] -> (reconstruction `[N,3,H,W]`, quantiser output)."""
        z = self.encoder(images)  # [N,D,h,w]
        n, _, h, w = z.shape
        q = self.quantizer(rearrange(z, "n d h w -> (n h w) d"))
        zq = rearrange(q.quantized, "(n h w) d -> n d h w", n=n, h=h, w=w)
        q.codes = q.codes.view(n, h, w)
        return self.decoder(zq), q

    forward = quantize_images

    # --- discrete interface ----------------------------------------------------------------
    def _check_frames(self, frames: torch.Tensor) -> None:
        size = self.cfg.frame_size
        if frames.ndim != 5 or frames.shape[-1] != 3 or frames.shape[2:4] != (size, size):
            raise VidchatError(
                f"video tokenizer expects frames [B,T,{size},{size},3] uint8, got {tuple(frames.shape)}; "
                f"resample the clip to {size}x{size} first"
            )

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames `[B,T,H,W,3]` uint8 -> codes `[B,T,h,w]` long."""
        self._check_frames(frames)
        b, t = frames.shape[:2]
        device = next(self.parameters()).device
        x = rearrange(frames.to(device).float(), "b t h w c -> (b t) c h w") / 127.5 - 1.0
        z = self.encoder(x)  # [(B T), D, h, w]
        n, _, h, w = z.shape
        codes = self.quantizer.encode(rearrange(z, "n d h w -> (n h w) d"))
        return rearrange(codes, "(b t h w) -> b t h w", b=b, t=t, h=h, w=w)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B,T,h,w]` -> frames `[B,T,H,W,3]` uint8."""
        b, t, h, w = codes.shape
        device = next(self.parameters()).device
        zq = self.quantizer.decode(codes.to(device).long().flatten())  # [(B T h w), D]
        zq = rearrange(zq, "(n h w) d -> n d h w", h=h, w=w)
        x = self.decoder(zq.float())  # [(B T), 3, H, W]
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return rearrange(x, "(b t) c h w -> b t h w c", b=b, t=t)

    # --- checkpoint ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, fp16: bool = True, extra: dict | None = None) -> None:
        hparams = {"class": "VQVideoTokenizer", "config": asdict(self.cfg), **(extra or {})}
        save_checkpoint(path, self.state_dict(), hparams, fp16=fp16)

    @classmethod
    def load(cls, path: str | os.PathLike) -> VQVideoTokenizer:
        state, hparams = load_checkpoint(path)
        if hparams.get("class") != "VQVideoTokenizer":
            raise VidchatError(
                f"{path}: not a video tokenizer checkpoint (class={hparams.get('class')!r})"
            )
        model = cls(VQVideoConfig(**hparams["config"]))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise VidchatError(f"{path}: weights do not match its JSON config: {exc}") from exc
        model.fingerprint = file_fingerprint(weights_path(path))
        return model
