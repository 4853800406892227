"""Find and load a trained responder: consolidated LM checkpoint + the tokenizers it was trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidchat.errors import VidchatError
from vidchat.inference.options import check_dtype
from vidchat.inference.pipeline import ResponderPipeline
from vidchat.media import read_image
from vidchat.model.checkpoint import load_consolidated, stem_of
from vidchat.model.runner import StepRunner
from vidchat.tokenizers import build_audio_tokenizer, build_video_tokenizer
from vidchat.utils.paths import resolve, resolve_existing

# Looked for in this order when no checkpoint is given: the user's own SFT run (under the folder
# they run from), then the demo model shipped in the package.
DEFAULT_CHECKPOINTS = ("checkpoints/sft/lm", "pkg:vidchat/assets/demo64/lm")


def default_checkpoint() -> Path:
    """The newest SFT export if this folder trained one, else the shipped demo LM."""
    for rel in DEFAULT_CHECKPOINTS:
        stem = resolve(rel)
        if stem.with_suffix(".json").is_file():
            return stem
    raise VidchatError(
        "no LM checkpoint found (looked for "
        + ", ".join(f"{r}.json" for r in DEFAULT_CHECKPOINTS)
        + "); train one with `python train.py stage=sft` or pass --checkpoint"
    )


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VidchatError(f"--device {device}: CUDA is not available on this machine")
    return torch.device(device)


def resolve_dtype(name: str, device: torch.device | str) -> torch.dtype:
    """`--dtype` -> the LM's weight dtype: `auto` is bfloat16 on a GPU and float32 on a CPU.
    The weights are cast once at load, so decoding never re-casts them per step as autocast
    does (which made bf16 autocast slower than fp32 on an H200)."""
    check_dtype(name)
    if name == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, name)


def _tokenizer_cfg(meta: dict[str, Any], which: str, stem: Path) -> dict[str, Any]:
    try:
        cfg = dict(meta["tokenizer"][which])
    except (KeyError, TypeError) as exc:
        raise VidchatError(
            f"{stem}.json: meta.tokenizer.{which} is missing; re-export the checkpoint"
        ) from exc
    for key, suffix in (("checkpoint", ".json"), ("pretrained_dir", "")):
        if cfg.get(key):
            cfg[key] = str(resolve_existing(cfg[key], stem.parent, suffix=suffix))
    return cfg


def load_pipeline(
    checkpoint: str | Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    decode: str = "eager",
) -> ResponderPipeline:
    """Load the LM at `checkpoint` (a consolidated stem; default: `default_checkpoint()`) with
    its weights in `dtype` (`resolve_dtype`); the tokenizers stay float32. `decode`: how its
    decode steps run (`vidchat.model.runner.DECODE_CHOICES`)."""
    stem = stem_of(checkpoint) if checkpoint else default_checkpoint()
    dev = resolve_device(device)
    model, layout, meta = load_consolidated(stem, device=dev, dtype=resolve_dtype(dtype, dev))
    video = build_video_tokenizer(_tokenizer_cfg(meta, "video", stem)).to(dev)
    audio = build_audio_tokenizer(_tokenizer_cfg(meta, "audio", stem)).to(dev)
    reference = None
    if meta.get("reference_image"):
        ref_path = resolve_existing(meta["reference_image"], stem.parent)
        reference = read_image(ref_path, size=tuple(video.spec.frame_size))
    return ResponderPipeline(
        model,
        layout,
        video,
        audio,
        reference=reference,
        partner_seconds=meta.get("partner_seconds"),
        runner=StepRunner.for_device(decode, dev),
    )
