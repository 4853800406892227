"""Curation on Ray Data: each stage an operator whose actors hold their models.

    sources ─► shots (PySceneDetect) ─► speech (Silero VAD + Resemblyzer) ─► people (dlib)
            ─► plan (driver: clips, filters, report) ─► cut (clips in the release layout)

With a GPU, the speech actors and (with a user-given network) the people actors take a share
of it (`vidchat.curate.devices`).

Ray runs locally by default (`ray.init` with `workers` CPUs) or joins a cluster
(`curate.ray_address=auto` or `ray://host:10001`). The analysis stages stream: a source's
speech stage starts while the next source's shots are detected. Every actor of a stage holds
its model once (the voice encoder, dlib's detector and landmarks) and writes each source's
result through `StageStore`, which is what makes a killed run resumable.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vidchat.curate.devices import OnDevice, actor_gpus, gpu_stages
from vidchat.curate.stages import (
    BadSource,
    PeopleModels,
    StageOptions,
    people_stage,
    shots_stage,
    speech_stage,
)
from vidchat.curate.store import STAGES, StageStore
from vidchat.errors import VidchatError


class StageWorker:
    """One Ray Data actor of one stage: runs the stage on each source of its batches."""

    def __init__(
        self, stage: str, output: str, opts: StageOptions, device: str = "cpu", threads: int = 1
    ) -> None:
        if stage == "speech":  # the torch models: voice encoder, Whisper (others: no import)
            import torch

            torch.set_num_threads(threads)
        self.stage, self.store, self.opts, self.device = stage, StageStore(output), opts, device
        self._model: Any = None

    def model(self) -> Any:
        if self._model is None and self.stage == "speech":
            self._model = _speech_models(self.opts, self.device)
        elif self._model is None and self.stage == "people":
            self._model = _people_models(self.opts, self.device)
        return self._model

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        status = [self.run_one(str(s), str(y)) for s, y in zip(batch["source"], batch["ytid"])]
        return {"source": batch["source"], "ytid": batch["ytid"], "status": np.asarray(status)}

    def run_one(self, source: str, ytid: str) -> str:
        """-> "cached", "bad" (an earlier stage failed) or the stage's own outcome."""
        if self.store.has(self.stage, ytid):
            return "cached"
        if self.store.error(ytid) is not None:
            return "bad"
        started, start = time.time(), time.perf_counter()
        try:
            result = self.compute(source, ytid)
        except BadSource as exc:
            result = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 (one broken source must not stop the run)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["seconds"] = round(time.perf_counter() - start, 3)
        result["started"] = round(started, 3)  # wall clock: a timeline of the run (bench)
        result["worker"] = os.getpid()  # which actor: shows the parallelism (bench, tests)
        self.store.save(self.stage, ytid, result)
        return "bad" if "error" in result else "done"

    def compute(self, source: str, ytid: str) -> dict:
        if self.stage == "shots":
            return shots_stage(source, self.opts)
        if self.stage == "speech":
            return speech_stage(source, self.model(), self.opts)
        shots, speech = self.store.load("shots", ytid), self.store.load("speech", ytid)
        return people_stage(source, shots, speech, self.model(), self.opts)


def _speech_models(opts: StageOptions, device: str) -> tuple:
    from vidchat.curate.asr import load_scorer
    from vidchat.curate.speech import load_encoder

    speech = opts.speech
    encoder = None if speech.rttm_dir else load_encoder(device)  # given turns need no voices
    return encoder, load_scorer(speech.asr, speech.asr_model, speech.asr_language, device)


def _people_models(opts: StageOptions, device: str) -> PeopleModels:
    """dlib's models (CPU), and each TorchScript network the user gave (None for the others),
    on `device`."""
    from vidchat.curate.faces import load_models
    from vidchat.perception.features import load_torchscript

    def load(path: str) -> Any:
        net = load_torchscript(path)
        return net if device == "cpu" else OnDevice(net, device)

    nets = (opts.sync.syncnet, opts.dover.weights, opts.hands.detector)
    return PeopleModels(*load_models(), *(load(p) if p else None for p in nets))


def analyse(
    sources: dict[str, Path],
    output: Path,
    opts: StageOptions,
    workers: int,
    progress: bool = True,
    gpus: float | None = None,
) -> None:
    """Run the analysis stages over every source not finished yet (streaming, on Ray); the
    actors of `gpu_stages(opts)` run their networks on `actor_gpus(gpus, ...)` GPUs each."""
    import ray
    import ray.data

    store = StageStore(output)
    todo = {y: p for y, p in sources.items() if not store.has(STAGES[-1], y)}
    if not todo:
        return
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts sources
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    rows = [{"source": str(p), "ytid": y} for y, p in todo.items()]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    on_gpus = gpu_stages(opts)
    per_actor = actor_gpus(gpus, ray.cluster_resources().get("GPU", 0.0), workers, len(on_gpus))
    for stage in STAGES:
        on_gpu = stage in on_gpus and per_actor > 0
        ds = ds.map_batches(
            StageWorker,
            fn_constructor_args=(stage, str(output), opts, "cuda" if on_gpu else "cpu"),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1 / len(STAGES),
            num_gpus=per_actor if on_gpu else None,
        )
    bar = tqdm(total=len(rows), desc="curate", unit="source", disable=not progress)
    try:
        for _ in ds.iter_rows():
            bar.update()
    except ray.exceptions.RayError as exc:  # a worker died (out of memory, a crash in C code)
        raise VidchatError(
            f"a curation worker failed ({type(exc).__name__}); what finished is "
            "kept: rerun the same command to resume"
        ) from exc
    finally:
        bar.close()


def cut_all(jobs: dict[str, list], progress: bool = True) -> dict[str, tuple[list, float]]:
    """Cut every planned clip on Ray, one task per source -> {ytid: ([(stem, status, detail)],
    worker seconds)}."""
    import ray

    from vidchat.data.speakervid.cut import cut_clip, is_done

    @ray.remote(num_cpus=1)
    def cut_source(source_jobs: list) -> tuple[list, float]:
        start = time.perf_counter()
        results = [cut_clip(j) if not is_done(j) else (j.stem, "ok", j.video) for j in source_jobs]
        return results, time.perf_counter() - start

    pending = {cut_source.remote(v): k for k, v in jobs.items() if v}
    out: dict[str, tuple[list, float]] = {}
    bar = tqdm(total=len(pending), desc="cut", unit="source", disable=not progress)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        out[pending.pop(ready[0])] = ray.get(ready[0])
        bar.update()
    bar.close()
    return out
