"""`stage=tokenize stage.ray_workers=N`: the same tokenize, split over N Ray workers.

Worker k runs today's tokenize for `shard_index=k, num_shards=N` (clip i when i % N == k) and
writes its own shards (`shard-{k:03d}-*`), so the shard format, the index and the resumability
are the multi-machine ones: a rerun skips every clip any worker committed, whatever N was.
Each worker loads the tokenizers once and decodes in its own process (`stage.num_workers`
DataLoader workers each); the driver shows one progress bar fed by the workers. On a cluster
with GPUs each worker gets a share of them (`worker_gpus`) and encodes there. Locally Ray
gets N CPUs; `stage.ray_address=auto` (or `ray://host:10001`) spreads the workers over a
cluster, whose nodes must see the same `data.root` and shard folder (a shared file system).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from vidchat.data.config import DataConfig
from vidchat.errors import VidchatError
from vidchat.training.config import TokenizeStageConfig
from vidchat.utils.ray_session import ray_session


class _RayProgress:
    """Forwards a worker's progress to the driver's counter actor (fire and forget)."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    def start(self, total: int) -> None:
        self.counter.add_total.remote(total)

    def step(self) -> None:
        self.counter.step.remote()


def _counter_class() -> Any:
    import ray

    @ray.remote(num_cpus=0)
    class Counter:
        def __init__(self) -> None:
            self.total, self.done = 0, 0

        def add_total(self, n: int) -> None:
            self.total += n

        def step(self) -> None:
            self.done += 1

        def read(self) -> tuple[int, int]:
            return self.total, self.done

    return Counter


def _share(
    work: Callable[..., dict],
    stage: TokenizeStageConfig,
    data: DataConfig,
    tokenizer: dict,
    data_dir: str,
    counter: Any,
) -> dict:
    """One worker's tokenize (runs in a Ray task)."""
    import torch

    torch.set_num_threads(1)
    return work(stage, data, tokenizer, data_dir, progress=_RayProgress(counter))


def worker_gpus(device: str, cluster_gpus: float, workers: int) -> float:
    """The GPUs each tokenize worker asks Ray for: none with `stage.device=cpu` or a cluster
    without GPUs, else the cluster's GPUs shared among the workers, at most one each (so all
    of them run at once); Ray shows each worker only its share's GPU, which it then uses."""
    if device == "cpu" or cluster_gpus <= 0:
        return 0.0
    return min(1.0, cluster_gpus / workers)


def tokenize_on_ray(
    work: Callable[..., dict],
    stage: TokenizeStageConfig,
    data: DataConfig,
    tokenizer: dict[str, Any],
    data_dir: str,
) -> dict[str, Any]:
    """Run `stage.ray_workers` workers of `work` (`tokenize.tokenize_data`) on Ray -> the merged
    summary."""
    import ray

    n = stage.ray_workers
    with ray_session(stage.ray_address, n):
        counter = _counter_class().remote()
        gpus = worker_gpus(stage.device, ray.cluster_resources().get("GPU", 0.0), n)
        task = ray.remote(num_cpus=1, num_gpus=gpus)(_share)
        device = "cuda" if gpus > 0 else "cpu"  # a worker sees only its own share's GPU
        shares = [
            dataclasses.replace(stage, shard_index=k, num_shards=n, ray_workers=0, device=device)
            for k in range(n)
        ]
        pending = [task.remote(work, s, data, tokenizer, data_dir, counter) for s in shares]
        summaries = _wait(pending, counter)
    summary = {
        "shard_dir": summaries[0]["shard_dir"],
        "clips_tokenized": sum(s["clips_tokenized"] for s in summaries),
        "clips_failed_total": sum(s["clips_failed_total"] for s in summaries),
        "clips_per_s": round(sum(s["clips_per_s"] for s in summaries), 2),
        "ray_workers": n,
    }
    print(f"tokenize: {summary}")
    if summary["clips_failed_total"]:
        print(
            f"tokenize: {summary['clips_failed_total']} clip(s) failed, listed in "
            f"{summary['shard_dir']}/failures-*.json"
        )
    return summary


def _wait(pending: list, counter: Any) -> list[dict]:
    """Results in worker order, with one progress bar over every worker's clips."""
    import ray

    order = list(pending)
    bar = tqdm(desc="tokenize (ray)", unit="clip")
    remaining = list(pending)
    while remaining:
        _, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=0.5)
        total, done = ray.get(counter.read.remote())
        bar.total = total
        bar.n = done
        bar.refresh()
    bar.close()
    try:
        return ray.get(order)
    except ray.exceptions.RayTaskError as exc:  # a worker's error is the user's one line
        cause = getattr(exc, "cause", None)
        if isinstance(cause, VidchatError):
            raise cause from None
        raise VidchatError(
            f"a tokenize worker failed: {cause or exc}; what it committed is "
            "kept: rerun the same command to resume"
        ) from exc
