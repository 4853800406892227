"""VidChatBench runner: generate responses for a test split, score them, write the report.

    python -m vidchat.eval                               # demo test split, shipped demo model
    python -m vidchat.eval checkpoint=checkpoints/sft/lm systems=[model,ground_truth]
    python -m vidchat.eval data=speakervid data.root=/data/speakervid metrics=[psnr,ssim,identity]

Systems side by side: `model` (the checkpoint), `untrained` (the same architecture with fresh
random weights: the floor every metric should beat), `tokenized` (the real responder turn through
the tokenizers' encode -> decode round trip: the best an LM over these codes can do) and
`ground_truth` (the real responder turn scored against itself and its references: the ceiling). A sample that fails to decode or to
generate is reported and skipped, never fatal.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from vidchat.data.manifest import load_manifest
from vidchat.data.records import ClipRecord, TurnPair, read_record
from vidchat.errors import VidchatError
from vidchat.eval.config import EvalConfig
from vidchat.eval.metrics.registry import get_metric
from vidchat.eval.metrics.result import MetricResult
from vidchat.eval.metrics.sample import EvalSample
from vidchat.eval.report import aggregate, markdown_table, summarize, write_report
from vidchat.inference.loading import load_pipeline
from vidchat.inference.pipeline import ResponderPipeline, fit_audio
from vidchat.media import read_image
from vidchat.model.transformer import VidChatLM

log = logging.getLogger("vidchat.eval")


@dataclass
class PairInputs:
    """One test pair decoded at the pipeline's rates."""

    pair: TurnPair
    partner: Any  # Clip
    target: Any  # Clip of the real responder turn
    reference: np.ndarray | None


def untrained_copy(pipe: ResponderPipeline, seed: int) -> ResponderPipeline:
    """The same architecture, layout and tokenizers with freshly initialised LM weights."""
    torch.manual_seed(seed)
    weight = next(pipe.model.parameters())
    model = VidChatLM(pipe.model.cfg).to(device=weight.device, dtype=weight.dtype)
    return ResponderPipeline(
        model,
        pipe.layout,
        pipe.video_tokenizer,
        pipe.audio_tokenizer,
        reference=pipe.default_reference,
        partner_seconds=pipe.partner_seconds,
    )


def reference_frame(
    pipe: ResponderPipeline, pair: TurnPair, others: Mapping[str, Sequence[ClipRecord]]
) -> np.ndarray | None:
    """The responder's reference image; without one (the SpeakerVid-5M release has none), the
    first frame of another clip of the same person, as training picks it (lm_dataset)."""
    if pair.reference:
        return pipe.read_reference(pair.reference)
    responder = pair.responder
    if responder is None:
        return None
    candidates = sorted(
        (r for r in others.get(responder.speaker_id, ()) if r.clip_id != responder.clip_id),
        key=lambda r: r.clip_id,
    )
    if not candidates:
        return None
    first = dataclasses.replace(candidates[0], duration=1.0 / pipe.fps)  # one frame is enough
    clip = read_record(
        first, fps=pipe.fps, size=pipe.frame_size, sample_rate=pipe.sample_rate, require_audio=False
    )
    return clip.frames[0] if clip.num_frames else None


def read_pairs(
    pipe: ResponderPipeline,
    pairs: Sequence[TurnPair],
    failures: list[dict],
    records: Sequence[ClipRecord] = (),
) -> list[PairInputs]:
    """Decode each pair; `records` (the manifest's) supply references where pairs have none."""
    by_speaker: dict[str, list[ClipRecord]] = defaultdict(list)
    for record in records:
        by_speaker[record.speaker_id].append(record)
    out = []
    for pair in tqdm(pairs, desc="reading test pairs", unit="pair"):
        try:
            partner = pipe.read_partner(pair.partner)
            target = read_record(
                pair.responder,
                fps=pipe.fps,
                size=pipe.frame_size,
                sample_rate=pipe.sample_rate,
                require_audio=False,
            )
            out.append(PairInputs(pair, partner, target, reference_frame(pipe, pair, by_speaker)))
        except VidchatError as exc:
            failures.append({"pair_id": pair.pair_id, "stage": "read", "error": str(exc)})
    return out


def responses(
    system: str,
    pipe: ResponderPipeline,
    inputs: Sequence[PairInputs],
    cfg: EvalConfig,
    failures: list[dict],
) -> Iterator[tuple[PairInputs, np.ndarray, np.ndarray]]:
    """(inputs, frames [T,H,W,3], audio [S]) per pair for one system."""
    if system == "ground_truth":
        for item in inputs:
            yield item, item.target.frames, item.target.audio
        return
    if system == "tokenized":
        for item in inputs:
            reference = pipe.reference_image(item.reference)  # a motion tokenizer's face
            yield item, *pipe.codec.round_trip(item.target.frames, item.target.audio, reference)
        return
    sampling = cfg.sampling_config()
    batch_size = cfg.batch_size
    for start in tqdm(
        range(0, len(inputs), batch_size), desc=f"generating ({system})", unit="batch"
    ):
        batch = inputs[start : start + batch_size]
        # `max_seconds` from the config, else as long as the batch's longest real response
        max_seconds = cfg.max_seconds or max(item.target.duration for item in batch)
        try:
            outs = pipe.respond_batch(
                [b.partner for b in batch],
                [b.reference for b in batch],
                max_seconds=max_seconds,
                sampling=sampling,
            )
        except VidchatError as exc:
            failures.extend(
                {
                    "pair_id": b.pair.pair_id,
                    "system": system,
                    "stage": "generate",
                    "error": str(exc),
                }
                for b in batch
            )
            continue
        for item, r in zip(batch, outs):
            yield item, r.frames, r.audio


def demo_gallery(pairs: Sequence[PairInputs], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """speaker id -> reference image, from the pairs' responders (the demo identity oracle)."""
    gallery = {}
    for item in pairs:
        rec = item.pair.responder
        if rec is not None and rec.speaker_id and rec.reference and rec.speaker_id not in gallery:
            gallery[rec.speaker_id] = read_image(rec.reference, size=size)
    return gallery


def metric_options(cfg: EvalConfig, name: str, gallery: dict[str, np.ndarray]) -> dict[str, Any]:
    opts = cfg.options(name)
    if name == "demo_identity" and gallery:
        opts.setdefault("gallery", gallery)
    return opts


@dataclass
class Scoring:
    """What scoring one system needs besides its responses."""

    cfg: EvalConfig
    metrics: Sequence[str]
    fps: float
    sample_rate: int
    gallery: dict
    failures: list[dict]


def _sample(item: PairInputs, frames: np.ndarray, audio: np.ndarray, sc: Scoring) -> EvalSample:
    labels = {
        **item.pair.responder.labels,
        **item.pair.labels,
        "identity": item.pair.responder.speaker_id,
    }
    return EvalSample(
        generated_frames=frames,
        generated_audio=fit_audio(audio, frames.shape[0], sc.fps, sc.sample_rate),
        fps=sc.fps,
        sample_rate=sc.sample_rate,
        target_frames=item.target.frames,
        target_audio=item.target.audio,
        reference_image=item.reference,
        labels=labels,
        transcript=labels.get("transcript"),
    )


def _score_sample(
    system: str,
    item: PairInputs,
    sample: EvalSample,
    names: Sequence[str],
    sc: Scoring,
    reasons: dict[str, str],
) -> tuple[dict, dict]:
    """Every per-sample metric on one sample -> (values, details); a metric that raises is
    listed, never fatal. Details (e.g. the emotion the oracle read) let a user see why a
    sample scored as it did."""
    values, details = {}, {}
    for name in names:
        try:
            result: MetricResult = get_metric(name).fn(
                sample, **metric_options(sc.cfg, name, sc.gallery)
            )
        except Exception as exc:  # noqa: BLE001 - one failing metric must not stop the benchmark
            log.debug("metric %s failed on %s", name, item.pair.pair_id, exc_info=True)
            sc.failures.append(
                {
                    "pair_id": item.pair.pair_id,
                    "system": system,
                    "metric": name,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
            continue
        values[name] = result.value
        if result.details:
            details[name] = result.details
        if not result.available:
            reasons[name] = result.reason
    return values, details


def score_system(
    system: str, generated: Iterator[tuple[PairInputs, np.ndarray, np.ndarray]], sc: Scoring
) -> dict[str, Any]:
    sample_metrics = [m for m in sc.metrics if get_metric(m).scope == "sample"]
    dataset_metrics = [m for m in sc.metrics if get_metric(m).scope == "dataset"]
    rows, samples, reasons = [], [], {}
    for item, frames, audio in generated:
        if frames.shape[0] == 0:
            sc.failures.append(
                {"pair_id": item.pair.pair_id, "system": system, "error": "empty response"}
            )
            continue
        sample = _sample(item, frames, audio, sc)
        values, details = _score_sample(system, item, sample, sample_metrics, sc, reasons)
        rows.append(
            {
                "pair_id": item.pair.pair_id,
                "branch": item.pair.branch,
                "metrics": values,
                "details": details,
            }
        )
        samples.append(sample)
    result = aggregate(rows, sample_metrics)
    for name in dataset_metrics:
        res = get_metric(name).fn(samples, **metric_options(sc.cfg, name, sc.gallery))
        summary = {"mean": res.value, "ci95": None, "n": len(samples) if res.available else 0}
        result["overall"][name] = summary
        if not res.available:
            reasons[name] = res.reason
    return {**result, "samples": rows, "unavailable": reasons}


LM_SYSTEMS = ("model", "untrained")


def score_model_metrics(
    system: str,
    pipe: ResponderPipeline,
    inputs: Sequence[PairInputs],
    result: dict[str, Any],
    sc: Scoring,
) -> None:
    """Metrics that read the LM itself (scope `model`) into `result["overall"]`; the systems
    without an LM get them as unavailable."""
    for name in (m for m in sc.metrics if get_metric(m).scope == "model"):
        if system not in LM_SYSTEMS:
            res = MetricResult(name, None, reason=f"needs an LM (systems {list(LM_SYSTEMS)})")
        else:
            try:
                res = get_metric(name).fn(pipe, inputs, **metric_options(sc.cfg, name, sc.gallery))
            except Exception as exc:  # noqa: BLE001 - as for sample metrics: listed, never fatal
                sc.failures.append(
                    {"system": system, "metric": name, "error": f"{type(exc).__name__}: {exc}"}
                )
                res = MetricResult(name, None, reason=f"failed: {type(exc).__name__}: {exc}")
        per_pair = res.details.get("per_pair", [res.value] if res.available else [])
        result["overall"][name] = summarize(per_pair)
        if res.details:
            result.setdefault("details", {})[name] = {
                k: v for k, v in res.details.items() if not k.endswith("per_pair")
            }
        if not res.available:
            result["unavailable"][name] = res.reason


def run(cfg: DictConfig | EvalConfig) -> dict[str, Any]:
    """Hydra entry (`configs/eval.yaml`): generate, score, write `report.json` + `report.md`."""
    cfg = cfg if isinstance(cfg, EvalConfig) else EvalConfig.from_cfg(cfg)
    metrics = [get_metric(m).name for m in cfg.metrics]  # unknown names fail here, before any work
    pipe = load_pipeline(cfg.checkpoint, device=cfg.device, dtype=cfg.dtype, decode=cfg.decode)
    manifest = load_manifest(cfg.data)
    pairs = manifest.pairs_for(cfg.split, list(cfg.branches))
    pairs = [p for p in pairs if p.responder is not None][: cfg.max_pairs or None]
    if not pairs:
        raise VidchatError(
            f"no {cfg.split} pairs with a ground-truth responder in data={cfg.data.kind}"
        )
    failures: list[dict] = []
    inputs = read_pairs(pipe, pairs, failures, manifest.records)
    gallery = demo_gallery(inputs, pipe.frame_size)
    report: dict[str, Any] = {
        "checkpoint": str(cfg.checkpoint or "default"),
        "split": cfg.split,
        "num_pairs": len(inputs),
        "systems": {},
    }
    only_lm = all(get_metric(m).scope == "model" for m in metrics)  # nothing to generate
    for system in cfg.systems:
        system_pipe = untrained_copy(pipe, cfg.seed) if system == "untrained" else pipe
        generated = iter(()) if only_lm else responses(system, system_pipe, inputs, cfg, failures)
        scoring = Scoring(cfg, metrics, pipe.fps, pipe.sample_rate, gallery, failures)
        report["systems"][system] = score_system(system, generated, scoring)
        score_model_metrics(system, system_pipe, inputs, report["systems"][system], scoring)
    report["failures"] = failures
    out_dir = Path(cfg.output_dir)
    json_path, md_path = write_report(report, metrics, out_dir)
    print(markdown_table(report, metrics))
    for f in failures:
        print(f"skipped: {f}")
    print(f"wrote {json_path} and {md_path} ({len(failures)} failures)")
    return report
