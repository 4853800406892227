"""Tokenizer checkpoints: `<stem>.safetensors` (weights) + `<stem>.json` (hyper-parameters).

Writes are atomic (temp file + os.replace), so a killed export never leaves half a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from vidchat.errors import VidchatError
from vidchat.utils.atomic import atomic_path, atomic_write_json
from vidchat.utils.paths import resolve


def _stem(path: str | os.PathLike) -> Path:
    p = resolve(path)
    return p.with_suffix("") if p.suffix in {".safetensors", ".json"} else p


def weights_path(path: str | os.PathLike) -> Path:
    return _stem(path).with_name(_stem(path).name + ".safetensors")


def hparams_path(path: str | os.PathLike) -> Path:
    return _stem(path).with_name(_stem(path).name + ".json")


def metrics_path(path: str | os.PathLike) -> Path:
    return _stem(path).with_name(_stem(path).name + ".metrics.json")


def file_fingerprint(*paths: str | os.PathLike) -> str:
    """Short content hash of weight files: shards record it, so retrained weights are noticed."""
    digest = hashlib.sha1()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def save_checkpoint(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    hparams: dict[str, Any],
    fp16: bool = True,
) -> None:
    """Save weights (floating tensors as fp16 when `fp16`) and the hyper-parameter JSON."""
    tensors = {}
    for name, t in state_dict.items():
        t = t.detach().cpu().contiguous()
        if fp16 and t.is_floating_point():
            t = t.half()
        tensors[name] = t
    with atomic_path(weights_path(path)) as tmp:
        save_file(tensors, str(tmp))
    atomic_write_json(hparams_path(path), hparams, indent=2, sort_keys=True)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return (fp32 state dict, hyper-parameters); a clear error when either file is missing."""
    wpath, hpath = weights_path(path), hparams_path(path)
    for p in (wpath, hpath):
        if not p.is_file():
            raise VidchatError(f"tokenizer checkpoint file not found: {p}")
    try:
        hparams = json.loads(hpath.read_text())
        state = load_file(str(wpath))
    except Exception as exc:  # corrupt file: say which
        raise VidchatError(f"cannot read tokenizer checkpoint {wpath}: {exc}") from exc
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    return state, hparams


M = TypeVar("M", bound="ConfigCheckpoint")


class ConfigCheckpoint:
    """`save` / `load` for a tokenizer built from one config dataclass (`cls(config_class(...))`,
    kept as `self.cfg`): the weights, and a JSON of its class name and config. `load` refuses
    another class's checkpoint with one line naming `checkpoint_name`."""

    config_class: type
    checkpoint_name: str
    legacy_config: dict[str, Any] = {}
    """Values for config keys added after a checkpoint was written: what it was trained as."""

    def save(self, path: str | os.PathLike, fp16: bool = True, extra: dict | None = None) -> None:
        hparams = {"class": type(self).__name__, "config": asdict(self.cfg), **(extra or {})}
        save_checkpoint(path, self.state_dict(), hparams, fp16=fp16)

    @classmethod
    def load(cls: type[M], path: str | os.PathLike) -> M:
        state, hparams = load_checkpoint(path)
        if hparams.get("class") != cls.__name__:
            raise VidchatError(
                f"{path}: not a {cls.checkpoint_name} checkpoint (class={hparams.get('class')!r})"
            )
        model = cls(cls.config_class(**{**cls.legacy_config, **hparams["config"]}))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise VidchatError(f"{path}: weights do not match its JSON config: {exc}") from exc
        model.fingerprint = file_fingerprint(weights_path(path))
        return model
