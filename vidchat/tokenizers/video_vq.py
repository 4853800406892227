"""Conv VQ autoencoder for video: frames `[B,T,H,W,3]` uint8 <-> codes `[B,T/k,h,w]`.

Architecture only: a compact conv encoder (one stride-2 stage per halving, so stride 8 or 16 is a
config value), a quantiser (EMA VQ, FSQ or LFQ, chosen by config) and a mirrored conv decoder.
Training lives in `vidchat.training.tokenizers.modules`.

Temporal compression (`temporal_stride` k = 2 or 4): each group of k consecutive frames is one
code frame. The per-frame encoder's features of a group are stacked on channels and merged by a
small conv stack; the decoder splits a code frame back into k frames. A code frame sees only its
own k frames, so encoding is causal in groups and streams chunk by chunk (a chunk's frame count
must be a multiple of k). We group from the first frame rather than coding the first frame
alone (Cosmos, MAGVIT-v2): the LM cuts every stream into equal 0.5 s chunks, and a group that
straddled two chunks would break streaming. A single image (the reference face) is coded as k
copies of itself, which is what those tokenizers' replicate padding of the first frame does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from vidchat.errors import VidchatError
from vidchat.tokenizers.base import TokenizerSpec, VideoTokenizer
from vidchat.tokenizers.checkpoint import ConfigCheckpoint
from vidchat.tokenizers.quantizers import QuantizerOutput, build_quantizer


@dataclass
class VQVideoConfig:
    """Hyper-parameters of the video VQ autoencoder (saved in the checkpoint JSON).

    frame_size: input frames are frame_size x frame_size pixels.
    fps: frame rate the tokenizer is trained for (its TokenizerSpec.frame_rate).
    downsample: frame_size / downsample codes per side (a power of two).
    channels: conv width per resolution stage, highest resolution first (len = log2(downsample)).
    quantizer: "vq" (EMA codebook: codebook_size x code_dim), "fsq" (fsq_levels; [8,8,8,5,5,5]
        is ~64k codes) or "lfq" (codebook_size = 2**bits).
    temporal_stride: frames per code frame (1, 2 or 4); the codes' frame rate is fps / k.
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
    temporal_stride: int = 1

    @property
    def code_dim_used(self) -> int:
        """Channels of the quantised latent."""
        if self.quantizer == "fsq":
            return len(self.fsq_levels)
        if self.quantizer == "lfq":
            return int(self.codebook_size).bit_length() - 1
        return self.code_dim

    def __post_init__(self) -> None:
        if self.temporal_stride not in (1, 2, 4):
            raise ValueError(f"temporal_stride must be 1, 2 or 4, got {self.temporal_stride}")
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


def _temporal_merge(cfg: VQVideoConfig, dim: int) -> nn.Sequential:
    """k frames' features `[N, k*C, h, w]` -> one code frame's latent `[N, dim, h, w]`."""
    c = cfg.channels[-1]
    return nn.Sequential(
        nn.Conv2d(cfg.temporal_stride * c, c, 3, padding=1),
        ResBlock(c),
        nn.GroupNorm(8, c),
        nn.SiLU(),
        nn.Conv2d(c, dim, 1),
    )


def _temporal_split(cfg: VQVideoConfig, dim: int) -> nn.Sequential:
    """One code frame's latent `[N, dim, h, w]` -> k frames' features `[N, k*C, h, w]`."""
    c = cfg.channels[-1]
    return nn.Sequential(
        nn.Conv2d(dim, c, 3, padding=1),
        ResBlock(c),
        nn.GroupNorm(8, c),
        nn.SiLU(),
        nn.Conv2d(c, cfg.temporal_stride * c, 1),
    )


class VQVideoTokenizer(ConfigCheckpoint, VideoTokenizer):
    """Frames in [0,255] -> a grid of codes from one codebook per code frame (k frames)."""

    config_class = VQVideoConfig
    checkpoint_name = "video tokenizer"

    def __init__(self, cfg: VQVideoConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.code_dim_used
        k = cfg.temporal_stride
        # k = 1 keeps the per-frame layout (and the shipped checkpoints' weight names); with
        # k > 1 the per-frame convs meet the temporal stacks at full width
        frame_dim = dim if k == 1 else cfg.channels[-1]
        self.encoder = _encoder(cfg, frame_dim)
        self.temporal_merge = _temporal_merge(cfg, dim) if k > 1 else None
        self.quantizer = build_quantizer(
            cfg.quantizer,
            cfg.codebook_size,
            dim,
            **(
                {"levels": cfg.fsq_levels}
                if cfg.quantizer != "vq"
                else dict(
                    decay=cfg.ema_decay,
                    commitment=cfg.commitment,
                    dead_threshold=cfg.dead_threshold,
                    kmeans_init=cfg.kmeans_init,
                )
            ),
        )
        self.temporal_split = _temporal_split(cfg, dim) if k > 1 else None
        self.decoder = _decoder(cfg, frame_dim)
        side = cfg.frame_size // cfg.downsample
        self.spec = TokenizerSpec(
            modality="video",
            frame_rate=float(cfg.fps) / k,
            temporal_stride=k,
            num_codebooks=1,
            codebook_size=int(self.quantizer.codebook_size),
            grid=(side, side),
            frame_size=(cfg.frame_size, cfg.frame_size),
        )

    # --- continuous path (training) -------------------------------------------------------
    def latents(self, images: torch.Tensor) -> torch.Tensor:
        """images `[N*k,3,H,W]` in [-1,1], k consecutive frames per group -> `[N,D,h,w]`."""
        z = self.encoder(images)  # [N*k,C,h,w]
        if self.temporal_merge is None:
            return z
        k = self.cfg.temporal_stride
        return self.temporal_merge(rearrange(z, "(n k) c h w -> n (k c) h w", k=k))

    def pixels(self, zq: torch.Tensor) -> torch.Tensor:
        """Quantised latents `[N,D,h,w]` -> images `[N*k,3,H,W]` in about [-1,1]."""
        if self.temporal_split is not None:
            k = self.cfg.temporal_stride
            zq = rearrange(self.temporal_split(zq), "n (k c) h w -> (n k) c h w", k=k)
        return self.decoder(zq)

    def quantize_images(self, images: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        """images `[N*k,3,H,W]` in [-1,1] (groups of k consecutive frames) -> (reconstruction
        `[N*k,3,H,W]`, quantiser output with codes `[N,h,w]`)."""
        z = self.latents(images)  # [N,D,h,w]
        n, _, h, w = z.shape
        q = self.quantizer(rearrange(z, "n d h w -> (n h w) d"))
        zq = rearrange(q.quantized, "(n h w) d -> n d h w", n=n, h=h, w=w)
        q.codes = q.codes.view(n, h, w)
        return self.pixels(zq), q

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
        """frames `[B,T,H,W,3]` uint8 -> codes `[B,ceil(T/k),h,w]` long. A last, incomplete group
        is filled with copies of the last frame (a single image becomes one code frame)."""
        self._check_frames(frames)
        k = self.cfg.temporal_stride
        if frames.shape[1] % k:
            fill = frames[:, -1:].expand(-1, k - frames.shape[1] % k, -1, -1, -1)
            frames = torch.cat([frames, fill], dim=1)
        b, t = frames.shape[0], frames.shape[1] // k
        device = next(self.parameters()).device
        x = rearrange(frames.to(device).float(), "b t h w c -> (b t) c h w") / 127.5 - 1.0
        z = self.latents(x)  # [(B T/k), D, h, w]
        n, _, h, w = z.shape
        codes = self.quantizer.encode(rearrange(z, "n d h w -> (n h w) d"))
        return rearrange(codes, "(b t h w) -> b t h w", b=b, t=t, h=h, w=w)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """codes `[B,Tc,h,w]` -> frames `[B,Tc*k,H,W,3]` uint8 (appearance codes: the
        reference is not needed, and ignored)."""
        b, t, h, w = codes.shape
        device = next(self.parameters()).device
        zq = self.quantizer.decode(codes.to(device).long().flatten())  # [(B Tc h w), D]
        zq = rearrange(zq, "(n h w) d -> n d h w", h=h, w=w)
        x = self.pixels(zq.float())  # [(B Tc k), 3, H, W]
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return rearrange(x, "(b t) c h w -> b t h w c", b=b)
