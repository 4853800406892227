"""Resumable training checkpoints (Lightning `.ckpt`, DeepSpeed ZeRO folders) -> the consolidated
LM format of `vidchat.model.checkpoint`.

The LM stages store the model and layout configs and the meta under the `CKPT_*` keys of every
training checkpoint, so that one file is enough to consolidate it.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from vidchat.errors import VidchatError
from vidchat.model.checkpoint import export_state_dict
from vidchat.training.safe_load import forced_weights_only, load_checkpoint_file, refused

MODEL_PREFIX = "model."
CKPT_MODEL_CONFIG = "vidchat_model_config"
CKPT_LAYOUT = "vidchat_layout"
CKPT_META = "vidchat_meta"


def _deepspeed_client_state(folder: Path) -> dict[str, Any]:
    """The Lightning client state saved next to a DeepSpeed ZeRO checkpoint (our config keys)."""
    tag_file = folder / "latest"
    tag = tag_file.read_text().strip() if tag_file.is_file() else "checkpoint"
    files = sorted((folder / tag).glob("*model_states.pt"))
    if not files:
        raise VidchatError(f"{folder}: not a DeepSpeed checkpoint (no {tag}/*model_states.pt)")
    return load_checkpoint_file(files[0])


WRAPPED = "_checkpoint_wrapped_module."
"""What `model.grad_checkpointing`'s `checkpoint_wrapper` adds to a block's parameter names.
A module's `state_dict` leaves it out, but DeepSpeed's zero_to_fp32 names parameters as the
engine saw them, with it."""


def _model_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The `VidChatLM` part of a LightningModule state dict (keys under `model.`), with the
    names the model itself has."""
    out = {k[len(MODEL_PREFIX) :]: v for k, v in state.items() if k.startswith(MODEL_PREFIX)}
    # DeepSpeed's zero_to_fp32 keeps the engine's `module.` prefix off, Lightning's wrapper on.
    if not out:
        out = {
            k[len("_forward_module." + MODEL_PREFIX) :]: v
            for k, v in state.items()
            if k.startswith("_forward_module." + MODEL_PREFIX)
        }
    return {k.replace(WRAPPED, ""): v for k, v in out.items()}


def export_from_checkpoint(
    ckpt: str | os.PathLike, path: str | os.PathLike, *, dtype: torch.dtype | None = torch.float16
) -> Path:
    """Consolidate a Lightning `.ckpt` file or a DeepSpeed checkpoint folder written by the LM
    stages (they store the model/layout config and meta in the checkpoint); returns the stem."""
    ckpt = Path(ckpt)
    if not ckpt.exists():
        raise VidchatError(f"{ckpt}: checkpoint not found")
    if ckpt.is_dir():
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        client = _deepspeed_client_state(ckpt)
        try:
            with forced_weights_only():  # DeepSpeed's reader asks for weights_only=False
                state = get_fp32_state_dict_from_zero_checkpoint(str(ckpt))
        except pickle.UnpicklingError as exc:
            raise refused(ckpt, exc) from None
    else:
        client = load_checkpoint_file(ckpt)
        if not isinstance(client, dict) or "state_dict" not in client:
            raise VidchatError(f"{ckpt}: not a Lightning checkpoint (no state_dict)")
        state = client["state_dict"]
    if CKPT_MODEL_CONFIG not in client:
        raise VidchatError(f"{ckpt}: not written by a vidchat LM stage (no {CKPT_MODEL_CONFIG})")
    meta = {**client.get(CKPT_META, {}), "step": int(client.get("global_step", 0))}
    return export_state_dict(
        _model_state(state),
        client[CKPT_MODEL_CONFIG],
        client[CKPT_LAYOUT],
        path,
        meta=meta,
        dtype=dtype,
    )
