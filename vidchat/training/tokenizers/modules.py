"""LightningModules that train the tokenizers (losses, metrics, optimiser; no data loading)."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
import torch.nn.functional as F
from einops import rearrange

from vidchat.errors import ConfigError
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.base import VideoTokenizer
from vidchat.training.config import TokenizerStageConfig
from vidchat.training.optim import OptimConfig, configure_adamw
from vidchat.training.tokenizers.losses import image_gradient_loss, multiscale_stft_loss
from vidchat.training.tokenizers.metrics import (
    codebook_usage,
    envelope_correlation,
    log_mel_l1,
    psnr,
    si_snr,
)


class _Schedule(L.LightningModule):
    """The shared AdamW + warmup/cosine recipe with the tokenizers' values (no weight decay)."""

    lr: float
    warmup_steps: int
    max_steps: int

    def configure_optimizers(self):
        cfg = OptimConfig(
            lr=self.lr,
            weight_decay=0.0,
            betas=(0.9, 0.99),
            warmup_steps=self.warmup_steps,
            min_lr_ratio=0.05,
        )
        return configure_adamw(self.named_parameters(), cfg, self.max_steps)


class VideoTokenizerModule(_Schedule):
    """Batches of frames `[N,H,W,3]` (or frame groups `[N,k,H,W,3]` for a temporal stride k)
    uint8; loss = L1 + L2 + edge loss + quantiser loss (commitment / LFQ entropy)."""

    def __init__(
        self,
        tokenizer: VideoTokenizer,
        lr: float = 1e-3,
        warmup_steps: int = 50,
        max_steps: int = 1000,
        edge_weight: float = 0.5,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.lr, self.warmup_steps, self.max_steps = lr, warmup_steps, max_steps
        self.edge_weight = edge_weight
        self.frozen: tuple[str, ...] = ()
        self._val_codes: list[torch.Tensor] = []

    @classmethod
    def for_stage(
        cls, tokenizer: VideoTokenizer, stage: TokenizerStageConfig
    ) -> VideoTokenizerModule:
        """The module with the stage's learning rate, schedule, edge weight and frozen parts."""
        module = cls(
            tokenizer,
            lr=stage.lr,
            warmup_steps=stage.warmup_steps,
            max_steps=stage.max_steps,
            edge_weight=stage.edge_weight,
        )
        module.freeze(stage.freeze)
        return module

    def freeze(self, parts: Sequence[str]) -> None:
        """Keep the tokenizer's `parts` (names of its top-level submodules) as they are: no
        gradient, and in eval mode while the rest trains, so that nothing in them moves (a
        codebook's EMA, a norm's statistics). A bad name is one `ConfigError`."""
        children = dict(self.tokenizer.named_children())
        name = type(self.tokenizer).__name__
        unknown = [p for p in parts if p not in children]
        if unknown:
            raise ConfigError(
                f"stage.freeze: {name} has no part {unknown[0]!r}; its parts: {sorted(children)}"
            )
        for part in parts:
            children[part].requires_grad_(False)
        if not any(p.requires_grad for p in self.tokenizer.parameters()):
            raise ConfigError(f"stage.freeze={list(parts)} leaves nothing of {name} to train")
        self.frozen = tuple(parts)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """Frozen parts run in eval mode at every step: Lightning sets submodules' modes
        itself (around validation, at the start of fit), not only through `train()`."""
        for part in self.frozen:
            getattr(self.tokenizer, part).eval()

    @staticmethod
    def to_images(frames: torch.Tensor) -> torch.Tensor:
        """`[N,H,W,3]` or `[N,k,H,W,3]` uint8 -> `[N*k,3,H,W]` float in [-1,1]."""
        frames = frames.reshape(-1, *frames.shape[-3:])
        return rearrange(frames.float(), "n h w c -> n c h w") / 127.5 - 1.0

    def loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """frames (uint8, as batched) -> (training loss, its parts for logging)."""
        x = self.to_images(frames)
        recon, q = self.tokenizer(x)
        l1, l2 = F.l1_loss(recon, x), F.mse_loss(recon, x)
        edge = image_gradient_loss(x, recon)
        loss = l1 + l2 + self.edge_weight * edge + q.loss
        return loss, {"train/loss": loss, "train/l1": l1, "train/commit": q.loss}

    def training_step(self, frames: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss, parts = self.loss(frames)
        self.log_dict(parts, prog_bar=True)
        return loss

    def validation_step(self, frames: torch.Tensor, batch_idx: int) -> None:
        x = self.to_images(frames)
        recon, q = self.tokenizer(x)
        self.log("val/psnr", psnr((x + 1) / 2, (recon.clamp(-1, 1) + 1) / 2), prog_bar=True)
        self._val_codes.append(q.codes.flatten().cpu())

    def on_validation_epoch_end(self) -> None:
        if self._val_codes:
            perplexity, used = codebook_usage(
                torch.cat(self._val_codes), self.tokenizer.spec.codebook_size
            )
            self.log_dict({"val/perplexity": perplexity, "val/codes_used": used})
        self._val_codes.clear()


class AudioCodecModule(_Schedule):
    """Batches of waveforms `[B,S]`; loss = waveform L1 + multi-scale STFT/mel + commitment."""

    def __init__(
        self,
        codec: EncodecAudioTokenizer,
        lr: float = 1e-3,
        warmup_steps: int = 50,
        max_steps: int = 1000,
        wave_weight: float = 1.0,
        spectral_weight: float = 1.0,
        commitment: float = 0.25,
        ema_decay: float = 0.95,
    ) -> None:
        super().__init__()
        self.codec = codec
        self.lr, self.warmup_steps, self.max_steps = lr, warmup_steps, max_steps
        self.wave_weight, self.spectral_weight = wave_weight, spectral_weight
        self.commitment, self.ema_decay = commitment, ema_decay
        self._val_codes: list[torch.Tensor] = []

    def reconstruct(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """audio `[B,S]` -> (reconstruction `[B,S]`, codes `[B,K,Ta]`, commitment loss)."""
        model = self.codec.model
        latents = model.encoder(audio[:, None])  # [B,D,Ta]
        quantized, codes, commit = self.codec.quantize_latents(latents, decay=self.ema_decay)
        recon = model.decoder(quantized)[:, 0, : audio.shape[1]]  # [B,1,S'] -> [B,S]
        return recon, codes, commit

    def training_step(self, audio: torch.Tensor, batch_idx: int) -> torch.Tensor:
        recon, _, commit = self.reconstruct(audio)
        sr = self.codec.spec.sample_rate
        wave = F.l1_loss(recon, audio)
        spectral = multiscale_stft_loss(audio, recon, sr)
        loss = self.wave_weight * wave + self.spectral_weight * spectral + self.commitment * commit
        self.log_dict(
            {"train/loss": loss, "train/spectral": spectral, "train/commit": commit}, prog_bar=True
        )
        return loss

    def validation_step(self, audio: torch.Tensor, batch_idx: int) -> None:
        recon, codes, _ = self.reconstruct(audio)
        sr = self.codec.spec.sample_rate
        self.log_dict(
            {
                "val/si_snr": si_snr(audio, recon),
                "val/log_mel_l1": log_mel_l1(audio, recon, sr),
                "val/envelope_corr": envelope_correlation(audio, recon, sr),
            },
            prog_bar=True,
        )
        self._val_codes.append(codes.cpu())

    def on_validation_epoch_end(self) -> None:
        if self._val_codes:
            codes = torch.cat(self._val_codes)  # [N,K,Ta]
            perplexity, used = codebook_usage(codes[:, 0], self.codec.spec.codebook_size)
            self.log_dict({"val/perplexity_cb0": perplexity, "val/codes_used_cb0": used})
        self._val_codes.clear()
