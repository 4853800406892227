"""Atomic checkpoint files and finding the checkpoint to resume from.

Lightning's default `TorchCheckpointIO` writes through an fsspec transaction whose temp file lives
in the system temp dir and is *moved* into place; across file systems that is a copy, so a crash
can leave a truncated `.ckpt`. `AtomicCheckpointIO` writes `<name>.tmp-<pid>` next to the target
and `os.replace`s it, which is atomic on POSIX file systems.

`StepCheckpoint` saves every N optimizer steps; when validation runs at that same step it saves
*after* validation, so the checkpoint holds the validation results and a resumed run neither
skips nor repeats that validation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vidchat.utils.atomic import atomic_path

CKPT_SUBDIR = "ckpt"
LAST_NAME = "last.ckpt"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` to a temp file in the same folder, then `os.replace` onto `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that never leaves a partial checkpoint file behind."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_torch_save(checkpoint, path)


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    """Where a run under `run_dir` keeps its resumable checkpoints."""
    return Path(run_dir) / CKPT_SUBDIR


def last_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest resumable checkpoint of the run in `run_dir` (`ckpt/last.ckpt`), or None.

    DeepSpeed checkpoints are folders with the same name; both count.
    """
    path = checkpoint_dir(run_dir) / LAST_NAME
    return path if path.exists() else None


def _validation_due(trainer: L.Trainer) -> bool:
    """Whether Lightning will validate right after the current training batch (int interval)."""
    if (
        not isinstance(trainer.val_check_interval, int)
        or trainer.check_val_every_n_epoch is not None
    ):
        return False
    if (
        not trainer.limit_val_batches
        or not trainer.fit_loop.epoch_loop.val_loop._data_source.is_defined()
    ):
        return False
    loop = trainer.fit_loop.epoch_loop
    return (loop.total_batch_idx + 1) % trainer.val_check_batch == 0


class StepCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint(every_n_train_steps=N)` that waits for a validation due at the same step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        every = self._every_n_train_steps
        due = (
            every >= 1
            and trainer.global_step % every == 0
            and not self._should_skip_saving_checkpoint(trainer)
        )
        if due and _validation_due(trainer):
            self._defer_save_until_validation = True  # ModelCheckpoint.on_validation_end saves it
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._defer_save_until_validation and not self._should_skip_saving_checkpoint(trainer):
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
            self._defer_save_until_validation = False
        super().on_train_end(trainer, pl_module)
