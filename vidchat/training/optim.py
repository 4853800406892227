"""The one optimiser recipe of every training stage: AdamW with linear warmup, then cosine decay.

The LM stages and the tokenizer stages differ only in their `OptimConfig` values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidchat.errors import ConfigError


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup then cosine decay to `min_lr_ratio * lr` (`stage.optim`)."""

    lr: float = 3e-4
    weight_decay: float = 0.1
    """Applied to matrices only; biases, norms and embeddings are never decayed."""
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "eps": self.eps > 0,
            "warmup_steps": self.warmup_steps >= 0,
            "min_lr_ratio": 0 <= self.min_lr_ratio <= 1,
            "betas": len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"stage.optim.{name} is out of range: {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, data: Any) -> OptimConfig:
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"stage.optim has unknown key(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}"
            )
        if "betas" in data:
            data["betas"] = tuple(float(b) for b in data["betas"])
        return cls(**data)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier at optimizer step `step`: linear warmup, then cosine down to `min_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def configure_adamw(
    named_parameters: Iterable[tuple[str, nn.Parameter]], cfg: OptimConfig, total_steps: int
) -> dict[str, Any]:
    """What a LightningModule's `configure_optimizers` returns: AdamW + a per-step schedule."""
    params = [(name, p) for name, p in named_parameters if p.requires_grad]
    if cfg.weight_decay > 0:
        decay = [p for name, p in params if p.dim() >= 2 and "embed" not in name]
        no_decay = [p for name, p in params if not (p.dim() >= 2 and "embed" not in name)]
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
    else:  # one group, in parameter order
        groups = [{"params": [p for _, p in params], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, cfg.warmup_steps, total_steps, cfg.min_lr_ratio)
    )
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
