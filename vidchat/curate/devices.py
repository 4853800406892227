"""Where the curation actors' networks run: the GPU share each actor asks Ray for, and the
wrapper that runs a user-given network on the actor's GPU while its callers stay on the CPU.

The speech stage runs its torch models (the voice encoder, Whisper) on a GPU when the cluster
has one; the people stage does too when it runs a user-given network (`sync.syncnet`,
`dover.weights`, `hands.detector`; dlib itself stays on the CPU). Every stage keeps `workers`
actors alive at once, so the share is split across all GPU actors: asking for more in all
than the cluster has would leave Ray waiting for GPUs that never come.
"""

from __future__ import annotations

from typing import Any

from vidchat.curate.stages import StageOptions
from vidchat.errors import VidchatError


def gpu_stages(opts: StageOptions) -> tuple[str, ...]:
    """The analysis stages whose actors take a GPU share: speech, and people with a network."""
    nets = (opts.sync.syncnet, opts.dover.weights, opts.hands.detector)
    return ("speech", "people") if any(nets) else ("speech",)


def actor_gpus(setting: float | None, cluster_gpus: float, workers: int, stages: int = 1) -> float:
    """The GPUs each GPU actor asks Ray for (`workers` actors in each of `stages` stages):
    `setting`, or (None) the cluster's GPUs shared among them all, at most one each."""
    actors = workers * stages
    if setting is None:
        return min(1.0, cluster_gpus / actors) if cluster_gpus > 0 else 0.0
    if setting > 0 and setting * actors > cluster_gpus:
        raise VidchatError(
            f"curate.gpus={setting:g} for each of {actors} GPU actors ({workers} workers x "
            f"{stages} stages) asks for more GPUs than the Ray cluster has ({cluster_gpus:g}); "
            "lower it, or leave it unset to share the GPUs"
        )
    return float(setting)


class OnDevice:
    """A TorchScript network moved to `device`, called like the original: tensor arguments go
    to the device, tensor results come back to the CPU, so the stages' numpy code is the same
    on a GPU actor. Methods (SyncNet's `forward_lip` / `forward_aud`) are wrapped too."""

    def __init__(self, module: Any, device: str) -> None:
        self.module, self.device = module.to(device), device

    def __call__(self, *args: Any) -> Any:
        return self._run(self.module, args)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.module, name)
        return (lambda *args: self._run(attr, args)) if callable(attr) else attr

    def _run(self, fn: Any, args: tuple) -> Any:
        import torch

        moved = [a.to(self.device) if isinstance(a, torch.Tensor) else a for a in args]
        out = fn(*moved)
        return out.cpu() if isinstance(out, torch.Tensor) else out
