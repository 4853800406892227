"""Speech: voice activity (Silero VAD), then who speaks when (diarisation).

Diarisation without pyannote weights: Resemblyzer speaker embeddings of 1.6 s partial windows
taken *inside* each VAD segment (a window never spans a pause, so it rarely mixes two voices),
clustered into the `num_speakers` main voices with k-means on the unit vectors (seeded, so
deterministic; on the pyannote two-speaker sample it scored DER 0.057 with a 0.25 s collar,
where average-linkage clustering split off one outlier window and scored 0.47). Each 10 ms step of speech takes the majority label
of the windows covering it; short label flips are smoothed away. The two main speakers are
named A (whoever talks first) and B, as in the release.

With `speech.rttm_dir`, the turns come from `{ytid}.rttm` files that another diarizer wrote
(`turns_from_rttm`): pyannote's pipeline, for one, whose package needs a torchaudio that does not
install beside this project's torch pin, runs in its own environment and hands over its RTTM.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidchat.perception.vad import VAD_RATE, WINDOW, speech_probabilities

STEP = 0.01  # s: the time grid of labels
_PARTIAL_RATE = 4.0  # partial windows per second (Resemblyzer: 1.6 s each)


@dataclass(frozen=True)
class SpeechOptions:
    threshold: float = 0.5  # VAD: speech starts above this probability...
    release: float = 0.35  # ...and ends below this one
    min_speech: float = 0.25  # s: shorter bursts are dropped
    min_silence: float = 0.3  # s: shorter pauses are bridged
    num_speakers: int = 2
    min_turn: float = 0.5  # s: a speaker label flip shorter than this is smoothed away
    asr: str = "none"  # pocketsphinx | whisper: ASR confidence and no-speech share per turn
    asr_model: str | None = None  # whisper: a local Hugging Face Whisper checkpoint folder
    asr_language: str | None = "en"  # whisper: the language token (null: none in the prompt)
    rttm_dir: str | None = None  # {ytid}.rttm from an outside diarizer (e.g. pyannote) instead


def voice_segments(
    audio: np.ndarray, sample_rate: int, opts: SpeechOptions
) -> list[tuple[float, float]]:
    """[S] audio -> speech segments [(start, end)] in seconds, with hysteresis."""
    probs = speech_probabilities(audio, sample_rate)  # [N] per 32 ms
    hop = WINDOW / VAD_RATE
    segments: list[list[float]] = []
    active = False
    for i, p in enumerate(probs):
        if not active and p >= opts.threshold:
            active = True
            segments.append([i * hop, i * hop])
        elif active and p < opts.release:
            active = False
        if active:
            segments[-1][1] = (i + 1) * hop
    merged: list[list[float]] = []
    for seg in segments:
        if merged and seg[0] - merged[-1][1] < opts.min_silence:
            merged[-1][1] = seg[1]
        else:
            merged.append(seg)
    return [(round(s, 3), round(e, 3)) for s, e in merged if e - s >= opts.min_speech]


def _partials(
    encoder: Any, audio: np.ndarray, sample_rate: int, segments: list[tuple[float, float]]
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Embeddings [P,256] of partial windows inside the segments, and each window's span."""
    embeds, spans = [], []
    for start, end in segments:
        lo, hi = round(start * sample_rate), round(end * sample_rate)
        wav = audio[lo:hi].astype(np.float32)
        wav = wav / max(float(np.abs(wav).max()), 1e-6) * 0.5
        _, partial, slices = encoder.embed_utterance(wav, return_partials=True, rate=_PARTIAL_RATE)
        for emb, sl in zip(partial, slices):
            spans.append((start + sl.start / sample_rate, min(start + sl.stop / sample_rate, end)))
            embeds.append(emb / max(np.linalg.norm(emb), 1e-9))
    return np.asarray(embeds), spans


def _cluster(embeds: np.ndarray, k: int) -> np.ndarray:
    if len(embeds) <= k:
        return np.arange(len(embeds))
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(embeds)


def _label_grid(segments, spans, labels, k: int, duration: float) -> np.ndarray:  # noqa: ANN001
    """[N] label per 10 ms step (-1 = no speech): majority of the covering windows."""
    n = int(np.ceil(duration / STEP))
    votes = np.zeros((n, k))
    for (s, e), lab in zip(spans, labels):
        votes[int(s / STEP) : int(np.ceil(e / STEP)), lab] += 1
    grid = np.full(n, -1)
    for s, e in segments:
        lo, hi = int(s / STEP), int(np.ceil(e / STEP))
        seg_votes = votes[lo:hi]
        fallback = int(seg_votes.sum(0).argmax())  # steps no window covers take the segment's
        grid[lo:hi] = np.where(seg_votes.sum(1) > 0, seg_votes.argmax(1), fallback)
    return grid


def _runs(grid: np.ndarray) -> list[list]:
    """[(label, start_step, end_step)] of equal-label runs."""
    edges = np.flatnonzero(np.diff(grid)) + 1
    bounds = [0, *edges.tolist(), len(grid)]
    return [[int(grid[a]), a, b] for a, b in zip(bounds[:-1], bounds[1:])]


def _smooth(grid: np.ndarray, min_steps: int) -> np.ndarray:
    """Relabel speech runs shorter than `min_steps` that sit between runs of one other speaker
    (or a run and silence) with that speaker: brief flips inside a turn are noise."""
    out = grid.copy()
    runs = _runs(out)
    for i, (label, a, b) in enumerate(runs):
        if label < 0 or b - a >= min_steps:
            continue
        near = [
            r[0]
            for r in (runs[i - 1] if i else None, runs[i + 1] if i + 1 < len(runs) else None)
            if r is not None and r[0] >= 0
        ]
        if near and all(n == near[0] for n in near) and near[0] != label:
            out[a:b] = near[0]
    return out


def diarise(audio: np.ndarray, sample_rate: int, encoder: Any, opts: SpeechOptions) -> dict:
    """Who speaks when -> {"segments": VAD segments, "turns": [{speaker, start, end}]}."""
    duration = len(audio) / sample_rate
    segments = voice_segments(audio, sample_rate, opts)
    if not segments:
        return {"segments": [], "turns": []}
    embeds, spans = _partials(encoder, audio, sample_rate, segments)
    labels = _cluster(embeds, opts.num_speakers)
    grid = _smooth(
        _label_grid(segments, spans, labels, opts.num_speakers, duration),
        round(opts.min_turn / STEP),
    )
    turns = [
        {"speaker": c, "start": a * STEP, "end": b * STEP} for c, a, b in _runs(grid) if c >= 0
    ]
    return {"segments": [list(s) for s in segments], "turns": main_speakers(turns)}


def main_speakers(turns: list[dict]) -> list[dict]:
    """Turns `[{speaker, start, end}]` under any labels -> the two main speakers' turns (by
    talking time) in time order, named A (whoever talks first) and B, times rounded to 1 ms."""
    talk: dict = {}
    for t in turns:
        talk[t["speaker"]] = talk.get(t["speaker"], 0.0) + t["end"] - t["start"]
    main = sorted(talk, key=lambda k: -talk[k])[:2]
    kept = sorted((t for t in turns if t["speaker"] in main), key=lambda t: t["start"])
    letters = {k: "AB"[i] for i, k in enumerate(dict.fromkeys(t["speaker"] for t in kept))}
    return [
        {"speaker": letters[t["speaker"]], "start": round(t["start"], 3), "end": round(t["end"], 3)}
        for t in kept
    ]


def read_rttm(path: str | Path) -> list[dict]:
    """RTTM `SPEAKER file 1 start duration <NA> <NA> name <NA> <NA>` lines -> turns."""
    turns = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            turns.append({"speaker": parts[7], "start": start, "end": start + duration})
    return turns


def turns_from_rttm(turns: list[dict]) -> dict:
    """An outside diarizer's turns (`read_rttm`) -> the speech result (`main_speakers`)."""
    out = main_speakers(turns)
    return {"segments": [[t["start"], t["end"]] for t in out], "turns": out}


def load_encoder(device: str = "cpu") -> Any:
    """Resemblyzer's GE2E voice encoder (weights inside the package) on `device`."""
    from resemblyzer import VoiceEncoder

    return VoiceEncoder(device, verbose=False)
