"""Speech quality: Microsoft DNSMOS (P.835 SIG/BAK/OVRL and P.808), ONNX from `speechmos`."""

from __future__ import annotations

import importlib.util

import numpy as np

from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.audio import check_audio, resample
from vidchat.perception.weights import missing_extra

DNSMOS_RATE = 16000


def dnsmos(audio: np.ndarray, sample_rate: int) -> MetricResult:
    """Overall MOS (1-5) of `[S]` float audio; details: sig, bak, p808 MOS."""
    for pkg in ("speechmos", "onnxruntime", "librosa"):
        if importlib.util.find_spec(pkg) is None:
            return MetricResult.unavailable("dnsmos", missing_extra(pkg))
    from speechmos import dnsmos as speechmos_dnsmos

    wav = resample(check_audio(audio, sample_rate, "audio"), sample_rate, DNSMOS_RATE)
    if not np.any(wav):
        return MetricResult.unavailable("dnsmos", "audio is silent")
    out = speechmos_dnsmos.run(wav, DNSMOS_RATE)
    details = {k: float(out[f"{k}_mos"]) for k in ("sig", "bak", "p808")}
    return MetricResult("dnsmos", float(out["ovrl_mos"]), details)
