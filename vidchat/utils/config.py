"""Config plumbing shared by every layer: one adapter from OmegaConf nodes to plain Python."""

from __future__ import annotations

from typing import Any


def to_plain(node: Any) -> Any:
    """A config node as plain Python: a `DictConfig`/`ListConfig` resolved into dicts and lists,
    a dataclass into a dict, None into `{}`; anything else (a dict, a scalar) is returned as is.

    Callers take configs from Hydra, from tests (plain dicts) and from checkpoint JSON alike, so
    every boundary funnels through here instead of keeping its own copy.
    """
    import dataclasses

    if node is None:
        return {}
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return dataclasses.asdict(node)
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return node
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def get(cfg: Any, key: str, default: Any = None) -> Any:
    """`cfg[key]` for a mapping, a DictConfig or an object; `default` when missing or None."""
    try:
        value = cfg.get(key, default)
    except AttributeError:
        value = getattr(cfg, key, default)
    return default if value is None else value
