"""Training callbacks: throughput (tokens/s) and model FLOPs utilisation (MFU) on GPUs.

MFU = 6 * N * tokens_per_second / (peak FLOP/s * devices), with N the non-embedding parameter
count (forward + backward of a dense transformer; attention FLOPs are left out, as in the
usual 6N estimate). Peak FLOP/s come from `peak_tflops` or, on a known GPU, from the table
below (dense bf16 tensor-core numbers from the vendors' data sheets).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch

PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A800": 312.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "A10G": 125.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
    "V100": 125.0,
    "T4": 65.0,
}


def peak_tflops_for(device_name: str) -> float | None:
    """Dense bf16 peak TFLOP/s for a GPU name (e.g. 'NVIDIA H100 80GB HBM3'), or None."""
    for key, value in PEAK_BF16_TFLOPS.items():
        if key.lower() in device_name.lower():
            return value
    return None


def count_params(module: torch.nn.Module, exclude_embeddings: bool = True) -> int:
    """Parameters for the 6N estimate (token embedding excluded: a lookup, not a matmul)."""
    if hasattr(module, "num_params"):
        return int(module.num_params(exclude_embeddings=exclude_embeddings))
    return sum(p.numel() for p in module.parameters())


class ThroughputMonitor(L.Callback):
    """Logs `perf/tokens_per_s` (non-padding tokens, all ranks) and, on GPUs, `perf/mfu`.

    Counts `batch["valid"]` (or `batch["tokens"]`) per micro-batch and averages over
    `trainer.log_every_n_steps` optimizer steps. `totals()` gives the whole-run figures.
    """

    def __init__(self, peak_tflops: float | None = None, n_params: int | None = None) -> None:
        self.peak_tflops = peak_tflops
        self.n_params = n_params
        self._tokens = 0
        self._t0: float | None = None
        self._window_tokens = 0
        self._window_t0: float | None = None
        self._elapsed = 0.0
        self._world = 1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.n_params is None:
            model = getattr(pl_module, "model", pl_module)
            self.n_params = count_params(model)
        if self.peak_tflops is None and trainer.strategy.root_device.type == "cuda":
            self.peak_tflops = peak_tflops_for(
                torch.cuda.get_device_name(trainer.strategy.root_device)
            )
        self._world = trainer.world_size
        self._t0 = self._window_t0 = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        n = batch["valid"].sum() if "valid" in batch else torch.tensor(batch["tokens"].numel())
        self._window_tokens += int(n) * trainer.world_size  # ranks see equal-sized batches
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return
        if trainer.global_step % max(1, trainer.log_every_n_steps):
            return
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        dt = max(now - (self._window_t0 or now), 1e-9)
        tps = self._window_tokens / dt
        pl_module.log("perf/tokens_per_s", tps, rank_zero_only=True)
        if self.peak_tflops and self.n_params:
            mfu = 6 * self.n_params * tps / (self.peak_tflops * 1e12 * trainer.world_size)
            pl_module.log("perf/mfu", mfu, rank_zero_only=True)
        self._tokens += self._window_tokens
        self._elapsed += dt
        self._window_tokens, self._window_t0 = 0, now

    def totals(self) -> dict[str, float]:
        """Tokens (all ranks) and tokens/s over the logged windows of this run."""
        out = {
            "tokens": float(self._tokens),
            "tokens_per_s": self._tokens / max(self._elapsed, 1e-9),
        }
        if self.peak_tflops and self.n_params:
            out["mfu"] = (
                6 * self.n_params * out["tokens_per_s"] / (self.peak_tflops * 1e12 * self._world)
            )
        return out
