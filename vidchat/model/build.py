"""Builders from config: the sequence layout from tokenizer specs, the model from `cfg.model`.

- `build_layout(video_spec, audio_spec, layout_cfg) -> SequenceLayout`
- `build_model(model_cfg, layout) -> VidChatLM`

`model_cfg` is the Hydra `model` node (or a dict): `ModelConfig` fields plus a `layout:` section
(and an optional `name`). Vocabulary and slot sizes come from the layout, never from the model
config. With `init_from_hf`, the architecture fields are read from the checkpoint's config.json
(a differing yaml value is an error, so a config never silently means something else).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from vidchat.errors import ConfigError
from vidchat.model.layout import LayoutConfig, SequenceLayout
from vidchat.model.transformer import ModelConfig, VidChatLM

_NOT_MODEL_FIELDS = ("layout", "name")


def _plain(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    if not isinstance(cfg, Mapping):  # an OmegaConf DictConfig
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)


def build_layout(video_spec: Any, audio_spec: Any, layout_cfg: Any = None) -> SequenceLayout:
    """Layout from the tokenizers' specs and the `model.layout` config section."""
    return SequenceLayout(LayoutConfig.from_specs(video_spec, audio_spec, **_plain(layout_cfg)))


def model_config(model_cfg: Any, layout: SequenceLayout) -> ModelConfig:
    """`ModelConfig` from the `model` config node, sized for `layout`."""
    cfg = {k: v for k, v in _plain(model_cfg).items() if k not in _NOT_MODEL_FIELDS}
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ConfigError(f"unknown model config keys {unknown}; known: {sorted(known)}")
    for key in ("vocab_size", "num_slots"):
        if key in cfg:
            raise ConfigError(
                f"model.{key} comes from the tokenizers' layout; remove it from the config"
            )
    if cfg.get("init_from_hf"):
        from vidchat.model.hf import hf_arch_fields

        for key, value in hf_arch_fields(cfg["init_from_hf"]).items():
            if cfg.get(key) is not None and cfg[key] != value:
                raise ConfigError(
                    f"model.{key}={cfg[key]} differs from {cfg['init_from_hf']} ({value}); "
                    f"set model.{key}=null or {value}"
                )
            cfg[key] = value
    return ModelConfig(vocab_size=layout.vocab.size, num_slots=layout.num_slots, **cfg)


def build_model(model_cfg: Any, layout: SequenceLayout) -> VidChatLM:
    """A freshly initialised `VidChatLM` (backbone from `init_from_hf` when set)."""
    cfg = model_config(model_cfg, layout)
    model = VidChatLM(cfg)
    if cfg.init_from_hf:
        from vidchat.model.hf import load_hf_backbone

        load_hf_backbone(model, cfg.init_from_hf)
    return model
