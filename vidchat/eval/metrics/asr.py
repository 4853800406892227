"""Content: transcribe with PocketSphinx (en-US model inside its wheel) and score WER."""

from __future__ import annotations

import importlib.util
import re

import numpy as np

from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.audio import check_audio, resample
from vidchat.perception.weights import missing_extra

ASR_RATE = 16000


def normalize_words(text: str) -> list[str]:
    """Lower case, punctuation dropped (apostrophes kept), split on whitespace."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance on words."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


def transcribe(audio: np.ndarray, sample_rate: int) -> str:
    """[S] float audio -> lower-case English transcript ("" for no speech)."""
    from pocketsphinx import Decoder

    wav = resample(check_audio(audio, sample_rate, "audio"), sample_rate, ASR_RATE)
    decoder = Decoder(samprate=ASR_RATE, logfn="/dev/null")
    decoder.start_utt()
    decoder.process_raw((wav * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def asr_wer(audio: np.ndarray, sample_rate: int, reference_text: str | None) -> MetricResult:
    """WER of the PocketSphinx transcript against `reference_text`; details: the transcript."""
    if importlib.util.find_spec("pocketsphinx") is None:
        return MetricResult.unavailable("wer", missing_extra("pocketsphinx"))
    text = transcribe(audio, sample_rate)
    if not reference_text:
        return MetricResult("wer", None, {"transcript": text}, reason="no reference transcript")
    return MetricResult("wer", word_error_rate(reference_text, text), {"transcript": text})
