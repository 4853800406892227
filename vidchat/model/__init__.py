"""Sequence layout, the causal transformer and KV-cache generation (see docs/architecture.md)."""

from vidchat.model.build import build_layout, build_model, model_config
from vidchat.model.layout import (
    LaidOutSequence,
    LayoutConfig,
    Modality,
    ResponderGrammar,
    Role,
    Segment,
    SequenceLayout,
    SplitSequence,
    Vocab,
    pad_batch,
)
from vidchat.model.transformer import KVCache, ModelConfig, VidChatLM

__all__ = [
    "KVCache",
    "LaidOutSequence",
    "LayoutConfig",
    "Modality",
    "ModelConfig",
    "ResponderGrammar",
    "Role",
    "Segment",
    "SequenceLayout",
    "SplitSequence",
    "VidChatLM",
    "Vocab",
    "build_layout",
    "build_model",
    "model_config",
    "pad_batch",
]
