"""The model's runtime settings, applied from outside it in training
(`vidchat.model.build.RUNTIME_FIELDS`): `model.compile` and `model.grad_checkpointing` to the
model before training, `model.loss_chunk` to the loss (`loss_chunk`, which
`LMTrainingModule` passes to `vidchat.training.lm.losses`). None of them is architecture; none
changes a parameter's name in a checkpoint."""

from __future__ import annotations

from typing import Any

from torch import nn

from vidchat.errors import ConfigError
from vidchat.model.runner import check_backend


def apply_runtime(model: nn.Module, model_cfg: dict[str, Any]) -> nn.Module:
    """Apply the `model` node's settings `compile` and `grad_checkpointing` to a `VidChatLM` (in
    place); returns it. (`loss_chunk` is the loss's: `loss_chunk`.)"""
    compile_blocks(model, model_cfg.get("compile"))
    if model_cfg.get("grad_checkpointing"):
        checkpoint_blocks(model)
    return model


def loss_chunk(model_cfg: dict[str, Any]) -> int | None:
    """`model.loss_chunk`, checked: positions per pass of a flat model's output head +
    cross-entropy in the training loss (`vidchat.training.lm.losses.linear_cross_entropy`);
    None = all at once."""
    chunk = model_cfg.get("loss_chunk")
    if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1):
        raise ConfigError(f"model.loss_chunk must be null or a positive integer, got {chunk!r}")
    return chunk


def compile_blocks(model: nn.Module, backend: str | None) -> None:
    """`model.compile`: compile each backbone block in place with `torch.compile`'s `backend`
    (None: eager). Per block: the blocks share one shape, so one graph serves them all."""
    if backend is None:
        return
    check_backend(backend, "model.compile")
    for block in model.layers:
        block.compile(backend=backend)


def checkpoint_blocks(model: nn.Module) -> None:
    """`model.grad_checkpointing`: each backbone block recomputes its activations in the
    backward pass (PyTorch's `checkpoint_wrapper`, as torchtitan applies it; its state-dict
    hooks keep the parameter names of checkpoints unchanged). After `compile_blocks`, so a
    compiled block is what is recomputed."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    for i, block in enumerate(model.layers):
        model.layers[i] = checkpoint_wrapper(block)
