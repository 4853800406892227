"""Builders from config: the sequence layout from tokenizer specs, the model from `cfg.model`.

- `build_layout(video_spec, audio_spec, layout_cfg) -> SequenceLayout`
- `build_model(model_cfg, layout) -> VidChatLM`

`model_cfg` is the Hydra `model` node (or a dict): `ModelConfig` fields plus a `layout:` section
(and an optional `name`) and `heads:` (settings per head kind, `model.heads.<kind>`). Vocabulary
and slot sizes and each stream's head come from the layout, never from the model config. With
`init_from_hf`, the architecture fields are read from the checkpoint's config.json (a differing
yaml value is an error, so a config never silently means something else).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from vidchat.errors import ConfigError
from vidchat.model.heads.base import STREAMS
from vidchat.model.heads.registry import HEADS, head_class
from vidchat.model.layout import SequenceLayout
from vidchat.model.plan import LayoutConfig
from vidchat.model.transformer import ModelConfig, VidChatLM
from vidchat.utils.config import to_plain

_NOT_MODEL_FIELDS = ("layout", "name", "heads")
MOVED = {
    "depth_layers": "model.heads.<kind>.layers",
    "depth_dim": "model.heads.<kind>.dim",
    "frame_prev": "model.heads.<frame head kind>.prev",
}
"""Model keys of earlier releases and where their setting lives now (old checkpoints are
migrated by `vidchat.model.checkpoint.migrate_model_keys`)."""
RUNTIME_FIELDS = ("grad_checkpointing", "loss_chunk", "compile", "init_from_hf")
"""`model.*` settings that are not architecture: `build_model` applies `init_from_hf`; training
applies `grad_checkpointing` and `compile` to the model and `loss_chunk` to its loss
(`vidchat.training.lm.runtime`); none is part of `ModelConfig` or of a saved checkpoint."""


def build_layout(video_spec: Any, audio_spec: Any, layout_cfg: Any = None) -> SequenceLayout:
    """Layout from the tokenizers' specs and the `model.layout` config section."""
    layout = dict(to_plain(layout_cfg))
    return SequenceLayout(LayoutConfig.from_specs(video_spec, audio_spec, **layout))


def model_config(model_cfg: Any, layout: SequenceLayout) -> ModelConfig:
    """`ModelConfig` from the `model` config node, sized for `layout`."""
    plain = dict(to_plain(model_cfg))
    cfg = {k: v for k, v in plain.items() if k not in (*_NOT_MODEL_FIELDS, *RUNTIME_FIELDS)}
    for key in set(cfg) & set(MOVED):
        raise ConfigError(f"model.{key} is now {MOVED[key]}")
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"unknown model config keys {unknown}; known: {sorted(known)}")
    for key in ("vocab_size", "num_slots", "stream_heads"):
        if key in cfg:
            raise ConfigError(
                f"model.{key} comes from the tokenizers' layout; remove it from the config"
            )
    init_from_hf = plain.get("init_from_hf")
    if init_from_hf:
        from vidchat.model.hf import hf_arch_fields

        for key, value in hf_arch_fields(init_from_hf).items():
            if cfg.get(key) is not None and cfg[key] != value:
                raise ConfigError(
                    f"model.{key}={cfg[key]} differs from {init_from_hf} ({value}); "
                    f"set model.{key}=null or {value}"
                )
            cfg[key] = value
    return ModelConfig(
        vocab_size=layout.vocab.size,
        num_slots=layout.num_slots,
        stream_heads=stream_heads(plain.get("heads"), layout),
        **cfg,
    )


def stream_heads(settings: Any, layout: SequenceLayout) -> dict[str, dict[str, Any]]:
    """Each stream's resolved head spec (`ModelConfig.stream_heads`): the kind the layout names,
    the codes per step, and `model.heads.<kind>`'s settings (shared by both streams of a kind)."""
    settings = dict(to_plain(settings) or {})
    unknown = sorted(set(settings) - set(HEADS))
    if unknown:
        raise ConfigError(
            f"model.heads has settings for unknown head kinds {unknown}; known: {sorted(HEADS)}"
        )
    out = {}
    for stream in STREAMS:
        kind = getattr(layout.cfg, f"{stream}_head")
        cls = head_class(kind, stream)
        out[stream] = cls.resolve(stream, layout.plan.step_size(stream), settings.get(kind))
    return out


def build_model(model_cfg: Any, layout: SequenceLayout) -> VidChatLM:
    """A freshly initialised `VidChatLM` (backbone from `model.init_from_hf` when set)."""
    model = VidChatLM(model_config(model_cfg, layout))
    init_from_hf = dict(to_plain(model_cfg)).get("init_from_hf")
    if init_from_hf:
        from vidchat.model.hf import load_hf_backbone

        load_hf_backbone(model, init_from_hf)
    return model
