"""Checkpoint files are read as data, never as code: `torch.load(weights_only=True)` everywhere.

Lightning already loads local checkpoints so on torch >= 2.6. DeepSpeed's checkpoint engine and
`zero_to_fp32` call `torch.load(..., weights_only=False)` themselves; `forced_weights_only()`
makes every `torch.load` inside a block safe, with the few non-tensor DeepSpeed types its state
files can hold allow-listed (`_safe_globals`: loss scalers, the ZeRO stage enum, fragment
addresses). A file that needs anything else to unpickle (a crafted
checkpoint, for one) is refused with one line naming it, and its code never runs.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from vidchat.errors import VidchatError


def _safe_globals() -> list[Any]:
    """Types DeepSpeed writes into its model and optimizer state files."""
    out: list[Any] = []
    try:
        from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
        from deepspeed.runtime.zero.config import ZeroStageEnum
        from deepspeed.utils.tensor_fragment import fragment_address

        out += [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]
    except ImportError:  # deepspeed is optional at run time for non-ZeRO runs
        pass
    return out


def refused(path: str | Path, exc: BaseException) -> VidchatError:
    """One line naming what the checkpoint asked to run. PyTorch's own message opens with how
    to load it anyway (`weights_only=False`): advice that vidchat never follows nor repeats."""
    named = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
    what = f"it names {named.group(1)}" if named else type(exc).__name__
    return VidchatError(
        f"{path}: refused to load: it holds more than tensors and plain data "
        f"({what}); vidchat never unpickles code from a checkpoint"
    )


def load_checkpoint_file(path: str | Path) -> Any:
    """`torch.load(path, weights_only=True)` with one-line errors naming the file."""
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise refused(path, exc) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise VidchatError(
            f"{path}: not a readable checkpoint ({str(exc)[:200]}); re-run the "
            "training stage that writes it"
        ) from exc


def check_zip(path: str | Path) -> None:
    """A torch checkpoint file is a zip: every member must be there with its CRC intact."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise VidchatError(
            f"{path}: truncated or garbled checkpoint ({exc}); delete it to start "
            "over, or resume from an earlier one"
        ) from exc
    if bad is not None:
        raise VidchatError(
            f"{path}: garbled checkpoint (member {bad} fails its CRC); delete it "
            "to start over, or resume from an earlier one"
        )


@contextmanager
def forced_weights_only() -> Iterator[None]:
    """Within the block, every `torch.load` runs with `weights_only=True` (whatever its caller
    asked for) and the DeepSpeed allow-list."""
    original = torch.load

    def safe_load(f: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        with torch.serialization.safe_globals(_safe_globals()):
            return original(f, *args, **kwargs)

    torch.load = safe_load
    try:
        yield
    finally:
        torch.load = original


def fit(trainer: Any, *args: Any, ckpt_path: str | None = None, **kwargs: Any) -> None:
    """`trainer.fit` resuming from `ckpt_path` with `weights_only=True`; a checkpoint that holds
    code is one error line naming it."""
    if ckpt_path and Path(ckpt_path).is_file():
        check_zip(ckpt_path)
    try:
        trainer.fit(*args, ckpt_path=ckpt_path, weights_only=True, **kwargs)
    except pickle.UnpicklingError as exc:
        raise refused(ckpt_path or "checkpoint", exc) from None
