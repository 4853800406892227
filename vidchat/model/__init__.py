"""Sequence layout, the causal transformer and KV-cache generation (see docs/architecture.md)."""

from vidchat.model.build import build_layout, build_model, model_config
from vidchat.model.grammar import ResponderGrammar
from vidchat.model.layout import LaidOutSequence, Segment, SequenceLayout, SplitSequence, pad_batch
from vidchat.model.plan import ChunkPlan, LayoutConfig, TokenPlan
from vidchat.model.transformer import KVCache, ModelConfig, VidChatLM
from vidchat.model.vocab import Modality, Role, Vocab

__all__ = [
    "ChunkPlan",
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
    "TokenPlan",
    "VidChatLM",
    "Vocab",
    "build_layout",
    "build_model",
    "model_config",
    "pad_batch",
]
