"""Audio codec: transformers' EnCodec behind the `AudioTokenizer` interface.

Weights come either from a local Hugging Face folder (`pretrained_dir`, e.g. facebook/encodec_24khz
on disk; never downloaded) or from our own checkpoint (`<stem>.safetensors` + `<stem>.json`, e.g. the
demo codec trained by `python train.py stage=audio_codec`). The number of codebooks K is a config
value; it maps onto one of the model's `target_bandwidths`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import EncodecConfig, EncodecModel

from vidchat.errors import ConfigError, VidchatError
from vidchat.tokenizers.base import AudioTokenizer, TokenizerSpec
from vidchat.tokenizers.checkpoint import (
    file_fingerprint,
    load_checkpoint,
    save_checkpoint,
    weights_path,
)
from vidchat.tokenizers.quantizers import (
    ema_codebook_update,
    kmeans,
    nearest_codes,
    restart_dead_codes,
)


def bandwidth_for(config: EncodecConfig, num_codebooks: int | None) -> float:
    """The target bandwidth (kbps) that makes EnCodec use exactly `num_codebooks` codebooks."""
    per_codebook = math.log2(config.codebook_size) * config.frame_rate / 1000
    if num_codebooks is None:
        return float(config.target_bandwidths[0])
    for bw in config.target_bandwidths:
        if int(max(1, math.floor(bw / per_codebook + 1e-9))) == num_codebooks:
            return float(bw)
    valid = [int(max(1, math.floor(bw / per_codebook + 1e-9))) for bw in config.target_bandwidths]
    raise ConfigError(
        f"tokenizer.audio.num_codebooks={num_codebooks} not offered by this EnCodec; choose one of {valid}"
    )


@torch.no_grad()
def init_codec_weights(model: EncodecModel, gain: float = 1.0) -> None:
    """Re-initialise conv weights with unit-gain fan-in scaling and zero biases.

    transformers' default init lets the biases swamp the signal (the input's share of the
    latents falls ~2x per conv stage, to <1% at the bottleneck), so a codec trained from scratch
    first learns to ignore its input and stalls. With this init the latents carry the input.
    """
    for module in model.modules():
        if not isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            continue
        fan_in = module.in_channels * module.kernel_size[0]
        if isinstance(module, nn.ConvTranspose1d):
            fan_in /= module.stride[0]  # each output sees kernel/stride taps per input channel
        weight = torch.randn_like(module.weight) * gain / math.sqrt(fan_in)
        if hasattr(module, "parametrizations"):  # weight norm: direction v and magnitude g
            module.parametrizations.weight.original1.copy_(weight)
            dims = tuple(range(1, weight.ndim))
            module.parametrizations.weight.original0.copy_(weight.norm(dim=dims, keepdim=True))
        else:
            module.weight.copy_(weight)
        if module.bias is not None:
            module.bias.zero_()


class EncodecAudioTokenizer(AudioTokenizer):
    """EnCodec with K codebooks: audio `[B,S]` <-> codes `[B,K,Ta]`."""

    def __init__(self, model: EncodecModel, num_codebooks: int | None = None) -> None:
        super().__init__()
        config = model.config
        if config.normalize or config.chunk_length_s is not None or config.audio_channels != 1:
            raise ConfigError(
                "only mono EnCodec models without normalisation or chunking (like encodec_24khz) are supported"
            )
        self.model = model
        self.bandwidth = bandwidth_for(config, num_codebooks)
        k = model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth)
        self.spec = TokenizerSpec(
            modality="audio",
            frame_rate=config.sampling_rate / config.hop_length,
            num_codebooks=k,
            codebook_size=config.codebook_size,
            sample_rate=config.sampling_rate,
            hop_length=config.hop_length,
        )

    # --- discrete interface ----------------------------------------------------------------
    @torch.no_grad()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio `[B,S]` float in [-1,1] -> codes `[B,K,Ta]` long, Ta = ceil(S / hop)."""
        if audio.ndim != 2:
            raise VidchatError(f"audio tokenizer expects audio [B,S], got {tuple(audio.shape)}")
        device = next(self.model.parameters()).device
        out = self.model.encode(audio.to(device).float()[:, None], bandwidth=self.bandwidth)
        return out.audio_codes[0]  # [1,B,K,Ta] -> [B,K,Ta]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes `[B,K,Ta]` -> audio `[B, Ta*hop]` float."""
        device = next(self.model.parameters()).device
        out = self.model.decode(codes.to(device).long()[None], [None])
        return out.audio_values[:, 0]  # [B,1,S] -> [B,S]

    # --- continuous path (training our own codec) ------------------------------------------
    def quantize_latents(
        self, latents: torch.Tensor, decay: float = 0.95, dead_threshold: float = 0.5
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residual VQ on encoder latents `[B,D,Ta]` with the EnCodec codebooks as EMA codebooks.

        Returns (quantized `[B,D,Ta]` with straight-through gradient, codes `[B,K,Ta]`,
        commitment loss). In training mode it updates the codebooks (k-means init on the first
        batch, EMA, dead-code restarts) in the buffers transformers itself uses.
        """
        b, d, t = latents.shape
        residual = latents.permute(0, 2, 1).reshape(-1, d).float()  # [B*Ta, D]
        quantized = torch.zeros_like(residual)
        all_codes, loss = [], latents.new_zeros(())
        for layer in self.model.quantizer.layers[: self.spec.num_codebooks]:
            book = layer.codebook
            flat = residual.detach()
            if self.training:
                if not bool(book.inited):
                    book.embed.copy_(kmeans(flat, book.embed.shape[0]))
                    book.embed_avg.copy_(book.embed)
                    book.cluster_size.fill_(1.0)
                    book.inited.fill_(True)
            codes = nearest_codes(flat, book.embed)
            q = F.embedding(codes, book.embed)
            if self.training:
                ema_codebook_update(
                    book.embed, book.embed_avg, book.cluster_size, flat, codes, decay
                )
                restart_dead_codes(
                    book.embed, book.embed_avg, book.cluster_size, flat, dead_threshold
                )
            loss = loss + F.mse_loss(residual, q.detach())
            quantized = quantized + q
            residual = residual - q.detach()
            all_codes.append(codes.view(b, t))
        full = latents.permute(0, 2, 1).reshape(-1, d)
        straight = full + (quantized - full).detach()
        return straight.view(b, t, d).permute(0, 2, 1), torch.stack(all_codes, 1), loss

    # --- loading / saving ------------------------------------------------------------------
    @classmethod
    def from_pretrained_dir(
        cls, path: str | os.PathLike, num_codebooks: int | None = None
    ) -> EncodecAudioTokenizer:
        """Load a Hugging Face EnCodec folder from disk (config.json + weights), offline."""
        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise VidchatError(
                f"tokenizer.audio.pretrained_dir: no EnCodec model (config.json) in {folder}"
            )
        try:
            model = EncodecModel.from_pretrained(str(folder), local_files_only=True)
        except Exception as exc:
            raise VidchatError(
                f"tokenizer.audio.pretrained_dir: cannot load EnCodec from {folder}: {exc}"
            ) from exc
        tok = cls(model, num_codebooks)
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        tok.fingerprint = file_fingerprint(folder / "config.json", *weights)
        return tok

    @classmethod
    def from_config(
        cls, config: EncodecConfig, num_codebooks: int | None = None
    ) -> EncodecAudioTokenizer:
        """A randomly initialised codec (to train from scratch, see `init_codec_weights`)."""
        model = EncodecModel(config)
        init_codec_weights(model)
        return cls(model, num_codebooks)

    def save(self, path: str | os.PathLike, fp16: bool = True, extra: dict | None = None) -> None:
        hparams = {
            "class": "EncodecAudioTokenizer",
            "encodec_config": self.model.config.to_dict(),
            "num_codebooks": self.spec.num_codebooks,
            **(extra or {}),
        }
        save_checkpoint(path, self.model.state_dict(), hparams, fp16=fp16)

    @classmethod
    def load(
        cls, path: str | os.PathLike, num_codebooks: int | None = None
    ) -> EncodecAudioTokenizer:
        state, hparams = load_checkpoint(path)
        if hparams.get("class") != "EncodecAudioTokenizer":
            raise VidchatError(
                f"{path}: not an audio codec checkpoint (class={hparams.get('class')!r})"
            )
        config = EncodecConfig.from_dict(hparams["encodec_config"])
        model = EncodecModel(config)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise VidchatError(f"{path}: weights do not match its JSON config: {exc}") from exc
        tok = cls(model, num_codebooks or hparams.get("num_codebooks"))
        tok.fingerprint = file_fingerprint(weights_path(path))
        return tok
