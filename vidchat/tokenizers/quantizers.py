"""Quantisers for the tokenizers: an EMA vector quantiser, and FSQ / LFQ from vector-quantize-pytorch.

Both map continuous latents `[N, D]` to integer codes `[N]` and back, with a straight-through
gradient so the encoder learns through the non-differentiable rounding / nearest-code lookup.
The EMA codebook helpers (`ema_codebook_update`, `restart_dead_codes`) are plain functions on
buffers so the audio codec can apply the same recipe to transformers' EnCodec codebooks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    """quantized `[N, D]` (straight-through), codes `[N]` long, loss: commitment (0 for FSQ)."""

    quantized: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor


def nearest_codes(x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for each latent: x `[N, D]`, embed `[C, D]` -> `[N]`."""
    dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ embed.t() + embed.pow(2).sum(1)[None]
    return dist.argmin(dim=1)


@torch.no_grad()
def ema_codebook_update(
    embed: torch.Tensor,
    embed_avg: torch.Tensor,
    cluster_size: torch.Tensor,
    x: torch.Tensor,
    codes: torch.Tensor,
    decay: float,
    eps: float = 1e-5,
) -> None:
    """One EMA step (VQ-VAE-2 / SoundStream): running counts and sums per code, in place.

    embed/embed_avg `[C, D]`, cluster_size `[C]`, x `[N, D]` latents assigned to codes `[N]`.
    """
    num_codes = embed.shape[0]
    onehot = F.one_hot(codes, num_codes).type(x.dtype)  # [N, C]
    cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    embed_avg.mul_(decay).add_(onehot.t() @ x, alpha=1 - decay)
    # Laplace smoothing keeps unused codes from dividing by zero.
    total = cluster_size.sum()
    smoothed = (cluster_size + eps) / (total + num_codes * eps) * total
    embed.copy_(embed_avg / smoothed[:, None])


@torch.no_grad()
def restart_dead_codes(
    embed: torch.Tensor,
    embed_avg: torch.Tensor,
    cluster_size: torch.Tensor,
    x: torch.Tensor,
    threshold: float,
) -> int:
    """Move codes whose EMA usage fell below `threshold` onto random latents of this batch.

    Returns how many codes were restarted. Keeps the codebook from collapsing onto a few codes.
    """
    dead = cluster_size < threshold
    n_dead = int(dead.sum())
    if n_dead == 0 or x.shape[0] == 0:
        return 0
    pick = torch.randint(0, x.shape[0], (n_dead,), device=x.device)
    noise = 1e-3 * torch.randn_like(x[pick])
    embed[dead] = x[pick] + noise
    embed_avg[dead] = embed[dead] * threshold
    cluster_size[dead] = threshold
    return n_dead


@torch.no_grad()
def kmeans(x: torch.Tensor, num_codes: int, iters: int = 10) -> torch.Tensor:
    """Plain k-means on latents `[N, D]` -> centroids `[num_codes, D]` (codebook init)."""
    idx = torch.randint(0, x.shape[0], (num_codes,), device=x.device)
    centroids = x[idx].clone()
    for _ in range(iters):
        codes = nearest_codes(x, centroids)
        counts = torch.bincount(codes, minlength=num_codes).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, codes, x)
        used = counts > 0
        centroids[used] = sums[used] / counts[used, None]
    return centroids


class VectorQuantizer(nn.Module):
    """Codebook `[C, D]` updated by EMA (no gradient), k-means init on the first batch,
    dead-code restarts; the encoder gets a commitment loss and a straight-through gradient."""

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        decay: float = 0.95,
        commitment: float = 0.25,
        dead_threshold: float = 0.5,
        kmeans_init: bool = True,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.dim = dim
        self.decay = decay
        self.commitment = commitment
        self.dead_threshold = dead_threshold
        self.register_buffer("embed", torch.randn(codebook_size, dim) * 0.1)
        self.register_buffer("embed_avg", self.embed.clone())
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x `[N, D]` -> codes `[N]`."""
        return nearest_codes(x.float(), self.embed.float())

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[N]` -> latents `[N, D]`."""
        return F.embedding(codes, self.embed)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        x = x.float()
        if self.training and not bool(self.initialized):
            self.embed.copy_(kmeans(x.detach(), self.codebook_size))
            self.embed_avg.copy_(self.embed)
            self.initialized.fill_(True)
        codes = self.encode(x)
        quantized = self.decode(codes)
        if self.training:
            flat = x.detach()
            ema_codebook_update(
                self.embed, self.embed_avg, self.cluster_size, flat, codes, self.decay
            )
            restart_dead_codes(
                self.embed, self.embed_avg, self.cluster_size, flat, self.dead_threshold
            )
        loss = self.commitment * F.mse_loss(x, quantized.detach())
        quantized = x + (quantized - x).detach()  # straight-through
        return QuantizerOutput(quantized, codes, loss)


class LibraryQuantizer(nn.Module):
    """FSQ (Mentzer et al. 2023) or LFQ (MAGVIT-v2) from `vector-quantize-pytorch`, behind our
    `encode` / `decode` / `forward -> QuantizerOutput` interface.

    Neither has a codebook to collapse, so the maintained implementations serve as well as our
    own would; `VectorQuantizer` stays hand-written because its EMA helpers are shared with the
    audio codec's EnCodec codebooks. FSQ: each of D = len(levels) channels is bounded and rounded
    to `levels[d]` values and the code is their mixed-radix number (levels [8,8,8,5,5,5] give
    64,000 codes). LFQ: each of D = log2(codebook_size) channels is a sign bit; its entropy loss
    (spreading codes over the codebook) is returned as the loss.
    """

    def __init__(
        self,
        kind: str,
        levels: list[int] | None = None,
        codebook_size: int = 0,
        entropy_weight: float = 0.1,
    ) -> None:
        super().__init__()
        from vector_quantize_pytorch import FSQ, LFQ

        if kind == "fsq":
            self.impl = FSQ(levels=list(levels or []))
            self.dim = len(levels or [])
        else:
            bits = int(codebook_size).bit_length() - 1
            if codebook_size < 2 or 2**bits != codebook_size:
                raise ValueError(f"lfq needs a power-of-two codebook_size, got {codebook_size}")
            self.impl = LFQ(
                dim=bits, codebook_size=codebook_size, entropy_loss_weight=entropy_weight
            )
            self.dim = bits
        self.codebook_size = int(self.impl.codebook_size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x `[N, D]` -> codes `[N]` long."""
        return self.impl(x.float()[None])[1][0].long()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[N]` -> latents `[N, D]` (FSQ: in [-1, 1]; LFQ: +-1 per channel)."""
        return self.impl.indices_to_codes(codes.long()).float()

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        out = self.impl(x.float()[None])  # [1,N,D] -> (quantized, indices[, aux loss])
        loss = out[2] if len(out) > 2 else torch.zeros((), device=x.device)
        return QuantizerOutput(out[0][0], out[1][0].long(), loss)


def build_quantizer(kind: str, codebook_size: int, dim: int, **options) -> nn.Module:
    """`kind`: "vq" (EMA codebook of `codebook_size` x `dim`), "fsq" (`options["levels"]`) or
    "lfq" (`codebook_size` = 2**bits)."""
    if kind == "vq":
        return VectorQuantizer(codebook_size, dim, **options)
    if kind == "fsq":
        return LibraryQuantizer("fsq", levels=options["levels"])
    if kind == "lfq":
        return LibraryQuantizer("lfq", codebook_size=codebook_size)
    raise ValueError(f"unknown quantizer {kind!r}; use 'vq', 'fsq' or 'lfq'")
