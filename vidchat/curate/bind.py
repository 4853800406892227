"""Bind each diarised voice to the face whose mouth moves with it, shot by shot.

For speaker X and face k, `r[X][k]` is the Pearson correlation of face k's mouth opening with
the audio loudness envelope over the frames where X speaks: the talker's mouth follows the
sound, a listener's stays shut. The assignment maximises the summed correlation (one face per
voice). `sync` is the bound face's correlation and `conf` its margin over the other face's,
recorded as the release records SyncNet's.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from vidchat.perception.signal import pearson


def speaker_frames(turns: list[dict], start: int, end: int, fps: float) -> dict[str, np.ndarray]:
    """Frame indices (relative to the shot start) where each speaker talks inside [start, end)."""
    out: dict[str, list[int]] = {}
    for turn in turns:
        lo = max(int(round(turn["start"] * fps)), start)
        hi = min(int(round(turn["end"] * fps)), end)
        if hi > lo:
            out.setdefault(turn["speaker"], []).extend(range(lo - start, hi - start))
    return {k: np.asarray(v) for k, v in out.items()}


def correlations(
    mouths: list[np.ndarray], envelope: np.ndarray, frames: dict[str, np.ndarray]
) -> dict[str, list[float]]:
    """r[X][k] for every speaker X talking in the shot and every face k."""
    out = {}
    for speaker, idx in frames.items():
        rs = [pearson(mouth[idx], envelope[idx]) for mouth in mouths]
        out[speaker] = [0.0 if not np.isfinite(r) else round(float(r), 4) for r in rs]
    return out


def bind(r: dict[str, list[float]], num_faces: int, min_sync: float) -> dict[str, dict]:
    """{speaker: {face, sync, conf}} for voices bound to a face with sync >= min_sync."""
    speakers = sorted(r)
    if not speakers or num_faces == 0:
        return {}
    best, best_score = None, -np.inf
    for faces in permutations(range(num_faces), min(len(speakers), num_faces)):
        for who in permutations(speakers, len(faces)):
            score = sum(r[s][f] for s, f in zip(who, faces))
            if score > best_score:
                best, best_score = list(zip(who, faces)), score
    out = {}
    for speaker, face in best or []:
        others = [v for k, v in enumerate(r[speaker]) if k != face]
        sync = r[speaker][face]
        if sync >= min_sync:
            conf = sync - max(others) if others else sync
            out[speaker] = {"face": face, "sync": round(sync, 4), "conf": round(conf, 4)}
    return out
