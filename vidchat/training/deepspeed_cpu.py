"""DeepSpeed ZeRO on CPU processes (gloo), so `trainer=deepspeed_zero2|3` runs without a GPU.

Lightning's `DeepSpeedStrategy.setup_environment` refuses any accelerator but CUDA, yet DeepSpeed
itself trains and saves ZeRO-2/3 checkpoints on CPU (its `cpu` accelerator, gloo collectives).
Rather than a second training loop, this subclass lifts that one check and pins DeepSpeed to its
CPU accelerator, so the same LightningModule, loop, callbacks and checkpoint export run the same
code path as on GPUs. It is meant for tests and laptops; real DeepSpeed runs use GPUs.

Both it and the GPU strategy (`SafeDeepSpeedStrategy`) resume with `weights_only=True` loads.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lightning.fabric.utilities.seed import reset_seed
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.strategies import DeepSpeedStrategy
from lightning.pytorch.strategies.ddp import DDPStrategy

from vidchat.training.safe_load import forced_weights_only, refused


@contextmanager
def _without_shm_inference_op() -> Iterator[None]:
    """DeepSpeed's torch backend compiles its shared-memory all-reduce (`ShareMemCommBuilder`, a
    C++ op for CPU *inference*) when it starts on the CPU accelerator: 90 s on a fresh machine,
    for an op that training, whose collectives are gloo's, never calls. Within this block the
    backend starts without it."""
    ds_torch = importlib.import_module("deepspeed.comm.torch")  # the attribute is torch itself
    original = ds_torch.build_shm_op
    ds_torch.build_shm_op = lambda: None
    try:
        yield
    finally:
        ds_torch.build_shm_op = original


class SafeDeepSpeedStrategy(DeepSpeedStrategy):
    """`DeepSpeedStrategy` whose resume reads the ZeRO files with `weights_only=True`
    (DeepSpeed's own reader asks for `weights_only=False`; see `safe_load`)."""

    def load_checkpoint(self, checkpoint_path: Any, weights_only: bool | None = None) -> Any:
        try:
            with forced_weights_only():
                return super().load_checkpoint(checkpoint_path, weights_only=True)
        except pickle.UnpicklingError as exc:
            raise refused(checkpoint_path, exc) from None


class CPUDeepSpeedStrategy(SafeDeepSpeedStrategy):
    """`DeepSpeedStrategy` that accepts a CPU accelerator (gloo backend, DeepSpeed `cpu` accelerator)."""

    strategy_name = "deepspeed_cpu"

    def __init__(self, *args, **kwargs) -> None:
        # DeepSpeed picks its accelerator at import time; without CUDA it must be told "cpu".
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        kwargs.setdefault("process_group_backend", "gloo")
        super().__init__(*args, **kwargs)

    def setup_environment(self) -> None:
        if not isinstance(self.accelerator, CPUAccelerator):
            super().setup_environment()
            return
        # Skip DeepSpeedStrategy's CUDA-only check; do what DDPStrategy does (set up distributed).
        DDPStrategy.setup_environment(self)

    def setup_distributed(self) -> None:
        if not isinstance(self.accelerator, CPUAccelerator):
            super().setup_distributed()
            return
        # CPU devices have no index, so skip the GPU index check; the rest is DeepSpeedStrategy's.
        reset_seed()
        self.set_world_ranks()
        with _without_shm_inference_op():
            self._init_deepspeed_distributed()

    def _setup_model_and_optimizer(self, model, optimizer, lr_scheduler=None):
        with self._cpu_device_rank():
            return super()._setup_model_and_optimizer(model, optimizer, lr_scheduler)

    def _initialize_deepspeed_inference(self, model) -> None:
        with self._cpu_device_rank():  # validation and `trainer.validate` take this path
            super()._initialize_deepspeed_inference(model)

    @contextmanager
    def _cpu_device_rank(self) -> Iterator[None]:
        """Lightning hands `deepspeed.initialize` the root device's index as `device_rank`,
        which a CPU device does not have (None, and DeepSpeed compares it with 0). Within
        this block such a call gets the process's local rank instead."""
        import deepspeed

        original = deepspeed.initialize
        if not isinstance(self.accelerator, CPUAccelerator):
            yield
            return

        def initialize(*args: Any, **kwargs: Any) -> Any:
            given = kwargs.get("args")
            if given is not None and getattr(given, "device_rank", 0) is None:
                kwargs["args"] = argparse.Namespace(
                    **{**vars(given), "device_rank": self.local_rank}
                )
            return original(*args, **kwargs)

        deepspeed.initialize = initialize
        try:
            yield
        finally:
            deepspeed.initialize = original
