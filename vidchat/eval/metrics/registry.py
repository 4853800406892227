"""Name -> metric table used by the benchmark runner.

Sample metrics are called as `fn(sample: EvalSample, **options)`, dataset metrics as
`fn(samples: Sequence[EvalSample], **options)`, model metrics (which read the LM itself, for the
systems that have one) as `fn(pipeline, pairs: Sequence[PairInputs], **options)`; all return a
`MetricResult`. Options come
from the eval config; a callable option may be given as a `"package.module:function"` string.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import vidchat.eval.metrics.asr as asr
import vidchat.eval.metrics.demo_oracle as demo_oracle
import vidchat.eval.metrics.dnsmos as dnsmos
import vidchat.eval.metrics.fid as fid
import vidchat.eval.metrics.fvd as fvd
import vidchat.eval.metrics.identity as identity
import vidchat.eval.metrics.lipsync as lipsync
import vidchat.eval.metrics.pixel as pixel
import vidchat.eval.metrics.syncnet as syncnet
import vidchat.eval.metrics.vad as vad
import vidchat.eval.metrics.voice as voice
from vidchat.errors import VidchatError
from vidchat.eval.metrics.result import MetricResult
from vidchat.eval.metrics.sample import EvalSample


@dataclass(frozen=True)
class Metric:
    name: str
    scope: Literal["sample", "dataset", "model"]  # "model": fn(pipeline, decoded test pairs)
    fn: Callable[..., MetricResult]
    higher_is_better: bool
    summary: str


def resolve_callable(spec: Any, what: str) -> Callable[..., Any]:
    """A callable, or `"package.module:attribute"` naming one."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise VidchatError(f"{what} must be a callable or 'package.module:function', got {spec!r}")
    module, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise VidchatError(f"{what}: cannot import {spec!r} ({exc})") from exc
    if not callable(fn):
        raise VidchatError(f"{what}: {spec!r} is not callable")
    return fn


def _needs_target(name: str, sample: EvalSample) -> MetricResult | None:
    if sample.target_frames is None:
        return MetricResult.unavailable(name, "no ground-truth responder frames for this sample")
    return None


def _psnr(sample: EvalSample, **opts: Any) -> MetricResult:
    return _needs_target("psnr", sample) or pixel.psnr(
        sample.generated_frames, sample.target_frames, **opts
    )


def _ssim(sample: EvalSample, **opts: Any) -> MetricResult:
    return _needs_target("ssim", sample) or pixel.ssim(
        sample.generated_frames, sample.target_frames, **opts
    )


def _needs_reference(name: str, sample: EvalSample) -> MetricResult | None:
    if sample.reference_image is None:
        return MetricResult.unavailable(name, "no reference image for this sample")
    return None


def _identity(sample: EvalSample, **opts: Any) -> MetricResult:
    return _needs_reference("identity", sample) or identity.identity_similarity(
        sample.generated_frames, sample.reference_image, **opts
    )


def _arcface(sample: EvalSample, **opts: Any) -> MetricResult:
    return _needs_reference("arcface", sample) or identity.arcface_similarity(
        sample.generated_frames, sample.reference_image, **opts
    )


def _lip_sync(sample: EvalSample, mouth_opening: Any = None, **opts: Any) -> MetricResult:
    extractor = (
        None
        if mouth_opening in (None, "dlib")
        else resolve_callable(mouth_opening, "lip_sync.mouth_opening")
    )
    return lipsync.lip_sync(
        sample.generated_frames,
        sample.generated_audio,
        sample.fps,
        sample.sample_rate,
        mouth_opening=extractor,
        **opts,
    )


def _syncnet(sample: EvalSample, **opts: Any) -> MetricResult:
    return syncnet.syncnet_confidence(
        sample.generated_frames, sample.generated_audio, sample.fps, sample.sample_rate, **opts
    )


def _voice(sample: EvalSample) -> MetricResult:
    return voice.speaker_similarity(
        sample.generated_audio, sample.voice_reference, sample.sample_rate
    )


def _dnsmos(sample: EvalSample) -> MetricResult:
    return dnsmos.dnsmos(sample.generated_audio, sample.sample_rate)


def _vad(sample: EvalSample, **opts: Any) -> MetricResult:
    return vad.voice_activity(sample.generated_audio, sample.sample_rate, **opts)


def _wer(sample: EvalSample) -> MetricResult:
    return asr.asr_wer(sample.generated_audio, sample.sample_rate, sample.transcript)


# The demo world's pixel oracles (vidchat/data/demo_world/face.py); overridable per metric option.
DEMO_MOUTH_OPENING = "vidchat.data.demo_world.face:measure_mouth_opening"
DEMO_CLASSIFY_EMOTION = "vidchat.data.demo_world.face:classify_emotion"


def _demo_lip_sync(
    sample: EvalSample, mouth_opening: Any = DEMO_MOUTH_OPENING, **opts: Any
) -> MetricResult:
    result = _lip_sync(sample, mouth_opening=mouth_opening, **opts)
    return MetricResult("demo_lip_sync", result.value, result.details, result.reason)


def _demo_identity(
    sample: EvalSample, gallery: Any = None, label: str = "identity", features: Any = None
) -> MetricResult:
    """gallery: {name: reference image} or a folder of `<name>.png` (the demo `refs/`)."""
    if not gallery or label not in sample.labels:
        return MetricResult.unavailable(
            "demo_identity", f"needs a gallery and the sample label {label!r}"
        )
    feats = (
        demo_oracle.colour_grid_features
        if features is None
        else resolve_callable(features, "demo_identity.features")
    )
    if isinstance(gallery, (str, Path)):
        gallery = demo_oracle.load_gallery(gallery)
    return demo_oracle.identity_match(
        sample.generated_frames, gallery, str(sample.labels[label]), feats
    )


def _demo_emotion(
    sample: EvalSample, classify: Any = DEMO_CLASSIFY_EMOTION, label: str = "emotion"
) -> MetricResult:
    """labels[label] must hold the emotion the dialogue rule expects of the responder."""
    if classify is None or label not in sample.labels:
        return MetricResult.unavailable(
            "demo_emotion", f"needs a classifier (classify) and the sample label {label!r}"
        )
    fn = resolve_callable(classify, "demo_emotion.classify")
    return demo_oracle.emotion_agreement(sample.generated_frames, str(sample.labels[label]), fn)


def _partner_dependence(pipe: Any, inputs: Sequence[Any], **opts: Any) -> MetricResult:
    import vidchat.eval.metrics.partner as partner

    return partner.score_pipeline(pipe, inputs, **opts)


def _split(samples: Sequence[EvalSample], name: str) -> tuple[list, list] | MetricResult:
    pairs = [(s.generated_frames, s.target_frames) for s in samples if s.target_frames is not None]
    if len(pairs) < 1:
        return MetricResult.unavailable(name, "no samples with ground-truth frames")
    return [g for g, _ in pairs], [t for _, t in pairs]


def _fid(samples: Sequence[EvalSample], **opts: Any) -> MetricResult:
    split = _split(samples, "fid")
    return split if isinstance(split, MetricResult) else fid.fid(*split, **opts)


def _fvd(samples: Sequence[EvalSample], **opts: Any) -> MetricResult:
    split = _split(samples, "fvd")
    return split if isinstance(split, MetricResult) else fvd.fvd(*split, **opts)


REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("psnr", "sample", _psnr, True, "PSNR (dB, capped) to the ground-truth responder"),
        Metric("ssim", "sample", _ssim, True, "Gaussian-window SSIM to the ground-truth responder"),
        Metric("fid", "dataset", _fid, False, "FID from a user-given TorchScript image network"),
        Metric("fvd", "dataset", _fvd, False, "FVD from a user-given TorchScript video network"),
        Metric(
            "identity",
            "sample",
            _identity,
            True,
            "dlib ResNet face cosine similarity to the reference",
        ),
        Metric("arcface", "sample", _arcface, True, "ArcFace cosine similarity (user-given ONNX)"),
        Metric(
            "lip_sync",
            "sample",
            _lip_sync,
            True,
            "best mouth-opening/audio-RMS correlation over lags",
        ),
        Metric("syncnet", "sample", _syncnet, True, "SyncNet confidence (user-given TorchScript)"),
        Metric("voice_similarity", "sample", _voice, True, "Resemblyzer speaker cosine similarity"),
        Metric("dnsmos", "sample", _dnsmos, True, "DNSMOS overall speech quality (1-5)"),
        Metric("voice_activity", "sample", _vad, True, "Silero VAD fraction of speech windows"),
        Metric("wer", "sample", _wer, False, "PocketSphinx word error rate against the transcript"),
        Metric(
            "demo_lip_sync",
            "sample",
            _demo_lip_sync,
            True,
            "demo world: pixel mouth vs audio correlation",
        ),
        Metric(
            "demo_identity",
            "sample",
            _demo_identity,
            True,
            "demo world: nearest identity is the right one",
        ),
        Metric(
            "partner_dependence",
            "model",
            _partner_dependence,
            True,
            "teacher-forced KL at the answer's first frame: true vs another partner",
        ),
        Metric(
            "demo_emotion",
            "sample",
            _demo_emotion,
            True,
            "demo world: expression matches the dialogue rule",
        ),
    ]
}


def register_metric(
    name: str,
    scope: Literal["sample", "dataset", "model"] = "sample",
    higher_is_better: bool = True,
    summary: str = "",
) -> Callable[[Callable[..., MetricResult]], Callable[..., MetricResult]]:
    """Register `fn` as the metric `name` (a decorator), from any module imported before the
    run (`imports=[...]` in the eval config): `metrics=[name]` then reports it. `scope` says how
    it is called (this module's docstring); its options come from `metric_options.<name>`."""

    def add(fn: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
        REGISTRY[name] = Metric(name, scope, fn, higher_is_better, summary or fn.__doc__ or name)
        return fn

    return add


def get_metric(name: str) -> Metric:
    try:
        return REGISTRY[name]
    except KeyError:
        raise VidchatError(
            f"unknown metric {name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None
