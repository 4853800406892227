"""Consolidated LM checkpoints: `<stem>.safetensors` (weights) + `<stem>.json` (configs).

The consolidated format is what `infer.py`, evaluation and the next stage load: no Lightning,
no DeepSpeed, no optimizer state. The JSON holds the `ModelConfig`, the `LayoutConfig` and a
`meta` dict (tokenizer specs and settings, stage, step, metrics). Both files are written
atomically (temp file + `os.replace`), weights first, so a reader never sees a JSON whose
weights are missing.

The format lives beside the model, so that inference and evaluation depend on the model alone;
`vidchat.training.lm.export.export_from_checkpoint` turns a resumable training checkpoint (a
Lightning `.ckpt` file or a DeepSpeed ZeRO checkpoint folder) into this format.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from vidchat.errors import VidchatError
from vidchat.model.build import stream_heads
from vidchat.model.heads.registry import HEADS
from vidchat.model.layout import SequenceLayout
from vidchat.model.plan import LayoutConfig
from vidchat.model.transformer import ModelConfig, VidChatLM
from vidchat.utils.atomic import atomic_path, atomic_write_json
from vidchat.utils.hashing import file_sha256
from vidchat.utils.paths import resolve

FORMAT = "vidchat-lm"
FORMAT_VERSION = 1


def stem_of(path: str | os.PathLike) -> Path:
    """`x`, `x.json` or `x.safetensors` -> `x` (`pkg:vidchat/...` resolved to the package)."""
    p = resolve(path)
    return p.with_suffix("") if p.suffix in (".json", ".safetensors") else p


def _unique_state(
    state: dict[str, torch.Tensor], dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """Contiguous copies (cast to `dtype` if floating), dropping tied duplicates (safetensors
    refuses shared storage; `load_consolidated` re-ties them through the model)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in state.items():
        ptr = t.data_ptr()
        if ptr in seen and t.numel():
            continue
        seen.add(ptr)
        t = t.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[name] = t.contiguous().clone()
    return out


def export_state_dict(
    state: dict[str, torch.Tensor],
    model_cfg: ModelConfig | dict[str, Any],
    layout_cfg: LayoutConfig | dict[str, Any],
    path: str | os.PathLike,
    *,
    meta: dict[str, Any] | None = None,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """Write a consolidated checkpoint from a `VidChatLM` state dict; returns the stem."""
    stem = stem_of(path)
    model_cfg = (
        dataclasses.asdict(model_cfg) if dataclasses.is_dataclass(model_cfg) else dict(model_cfg)
    )
    layout_cfg = (
        dataclasses.asdict(layout_cfg) if dataclasses.is_dataclass(layout_cfg) else dict(layout_cfg)
    )
    weights = _unique_state(state, dtype)
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(weights, str(tmp), {"format": FORMAT})
        digest = file_sha256(tmp)
    doc = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model_cfg,
        "layout": layout_cfg,
        "meta": meta or {},
        "weights_sha256": digest,
    }
    atomic_write_json(stem.with_suffix(".json"), doc, indent=2, default=str)
    return stem


def export_consolidated(
    model: VidChatLM,
    layout: SequenceLayout,
    path: str | os.PathLike,
    *,
    meta: dict[str, Any] | None = None,
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """Write `model` (weights in `dtype`, fp16 by default) and its configs; returns the stem."""
    return export_state_dict(
        model.state_dict(), model.cfg, layout.cfg, path, meta=meta, dtype=dtype
    )


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON half of a consolidated checkpoint (one-line error if missing or foreign)."""
    js = stem_of(path).with_suffix(".json")
    if not js.is_file():
        raise VidchatError(f"{js}: consolidated LM checkpoint not found (no such file)")
    try:
        doc = json.loads(js.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VidchatError(f"{js}: not valid JSON ({exc}); export the checkpoint again") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise VidchatError(f"{js}: not a vidchat LM checkpoint (no format {FORMAT!r})")
    return doc


# Keys that older `lm.json` files carry and `ModelConfig` no longer has: runtime settings that
# moved out of the model, and knobs removed because nothing read them.
RETIRED_MODEL_KEYS = {
    "grad_checkpointing": None,  # a training setting now
    "init_from_hf": None,  # a training setting now
    "spatial_layers": 0,  # never implemented (only 0 was accepted); use a depth or frame head
}


# Head keys of checkpoints saved before heads were one class each (`vidchat.model.heads`): the
# layout's kinds plus these flags said which heads a model had; `stream_heads` says it now.
HEAD_FLAGS = ("max_group", "frame_head", "depth_head", "depth_layers", "depth_dim", "frame_prev")


def migrate_model_keys(
    model: dict[str, Any], layout: SequenceLayout | None = None
) -> dict[str, Any]:
    """An older checkpoint's `model` section as `ModelConfig` takes it: retired keys dropped,
    after checking that a retired knob held the only value that ever worked, and the head flags
    of a checkpoint without `stream_heads` turned into one spec per stream (`layout` needed):
    `depth_layers` -> `layers`, `depth_dim` -> `dim` of every head, `frame_prev` -> `prev` of the
    frame head."""
    for key, only in RETIRED_MODEL_KEYS.items():
        if only is not None and model.get(key, only) != only:
            raise VidchatError(
                f"lm.json: model.{key}={model[key]!r} is retired (only {only!r} was ever supported)"
            )
    out = {k: v for k, v in model.items() if k not in RETIRED_MODEL_KEYS and k not in HEAD_FLAGS}
    if "stream_heads" not in model and layout is not None:
        old = {
            "layers": model.get("depth_layers", 2),
            "dim": model.get("depth_dim"),
            "prev": bool(model.get("frame_prev", False)),
        }
        settings = {
            kind: {k: v for k, v in old.items() if k in cls.setting_names()}
            for kind, cls in HEADS.items()
        }
        out["stream_heads"] = stream_heads(settings, layout)
    return out


def migrate_state(state: dict[str, torch.Tensor], layout: LayoutConfig) -> dict[str, torch.Tensor]:
    """Weights of a checkpoint saved before `heads`: the frame head's `frame_head.*` become the
    video head's `heads.video.*`, and the depth transformer's `depth.*` become those of every
    stream with a depth head (one transformer served both, so each gets a copy)."""
    if not any(k.startswith(("depth.", "frame_head.")) for k in state):
        return state
    depth_streams = [s for s in ("audio", "video") if getattr(layout, f"{s}_head") == "depth"]
    out = {}
    for name, t in state.items():
        if name.startswith("frame_head."):
            out["heads.video." + name.removeprefix("frame_head.")] = t
        elif name.startswith("depth."):
            for stream in depth_streams:
                out[f"heads.{stream}." + name.removeprefix("depth.")] = t
        else:
            out[name] = t
    return out


def configs_of(doc: dict[str, Any]) -> tuple[ModelConfig, SequenceLayout]:
    """An `lm.json` document's model config and layout, older formats migrated
    (`migrate_model_keys`)."""
    # checkpoints written before `chunk_order` existed were all trained video-first
    layout = SequenceLayout(LayoutConfig(**{"chunk_order": "video_first", **doc["layout"]}))
    return ModelConfig(**migrate_model_keys(doc["model"], layout)), layout


def load_consolidated(
    path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[VidChatLM, SequenceLayout, dict[str, Any]]:
    """Load `<stem>.safetensors` + `<stem>.json` -> (model in eval mode, layout, meta)."""
    stem = stem_of(path)
    doc = read_config(stem)
    weights_path = stem.with_suffix(".safetensors")
    if not weights_path.is_file():
        raise VidchatError(f"{weights_path}: weights of the consolidated LM checkpoint are missing")
    expected = doc.get("weights_sha256")  # exports before checksums existed carry none
    if expected and file_sha256(weights_path) != expected:
        raise VidchatError(
            f"{weights_path}: weights do not match the checksum in "
            f"{stem.with_suffix('.json').name}; export the checkpoint again"
        )
    model_cfg, layout = configs_of(doc)
    model = VidChatLM(model_cfg)
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own SafetensorError for a damaged file
        raise VidchatError(f"{weights_path}: unreadable weights ({exc})") from exc
    missing, unexpected = model.load_state_dict(migrate_state(state, layout.cfg), strict=False)
    if model.cfg.tie_embeddings:
        missing = [m for m in missing if m != "lm_head.weight"]
    if missing or unexpected:
        raise VidchatError(
            f"{weights_path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.to(device=device, dtype=dtype).eval(), layout, doc.get("meta", {})
