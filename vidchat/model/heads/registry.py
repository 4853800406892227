"""`model.layout.<stream>_head` -> the head class: `register_head`, `head_class`, `build_head`.

A new head is one module with a `Head` subclass (`vidchat.model.heads.base`) and one
`register_head(MyHead)` call, from any module imported before the model is built (a built-in is
listed below). Its settings come from `model.heads.<kind>`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vidchat.errors import ConfigError
from vidchat.model.heads.base import Head
from vidchat.model.heads.depth import DepthHead
from vidchat.model.heads.flat import FlatHead
from vidchat.model.heads.maskgit import MaskGITHead

HEADS: dict[str, type[Head]] = {cls.kind: cls for cls in (FlatHead, DepthHead, MaskGITHead)}


def register_head(cls: type[Head]) -> type[Head]:
    """Register a `Head` subclass under its `kind` (usable as a class decorator)."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} needs a `kind` to be registered under")
    HEADS[cls.kind] = cls
    return cls


def head_class(kind: str, stream: str) -> type[Head]:
    """The class `model.layout.<stream>_head=<kind>` names (a `ConfigError` if none)."""
    if kind not in HEADS:
        raise ConfigError(f"layout.{stream}_head must be one of {sorted(HEADS)}, got {kind!r}")
    return HEADS[kind]


def build_head(cfg: Any, spec: Mapping[str, Any]) -> Head:
    """The head a resolved spec (`ModelConfig.stream_heads[stream]`) describes."""
    return head_class(spec["kind"], spec["stream"])(cfg, dict(spec))
