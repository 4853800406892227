"""Known-answer scores for curation: shot boundaries, diarisation error rate, binding, clips."""

from __future__ import annotations

from itertools import permutations

import numpy as np

from vidchat.curate.clips import ClipOptions, plan_clips
from vidchat.curate.shots import ShotOptions, select_shots

STEP = 0.01  # s: the grid on which diarisation is scored


def cut_accuracy(truth: list[int], found: list[int], tolerance: int = 2) -> float:
    """Share of true cuts (first frames of shots) with a found cut within `tolerance` frames."""
    if not truth:
        return 1.0
    found_arr = np.asarray(found, dtype=float)
    hits = [bool(len(found_arr)) and float(np.abs(found_arr - t).min()) <= tolerance for t in truth]
    return float(np.mean(hits))


def _grid(turns: list[dict], labels: dict[str, int], n: int) -> np.ndarray:
    grid = np.full(n, -1)
    for turn in turns:
        grid[int(round(turn["start"] / STEP)) : int(round(turn["end"] / STEP))] = labels[
            turn["speaker"]
        ]
    return grid


def diarisation_error_rate(
    reference: list[dict], hypothesis: list[dict], collar: float = 0.0
) -> float:
    """DER = (missed + false alarm + speaker confusion) / reference speech time, on a 10 ms grid,
    under the best one-to-one mapping of hypothesis to reference speakers. `collar` seconds
    around each reference boundary are not scored (0.25 s is customary). Turns are
    `{"speaker", "start", "end"}` in seconds; overlapping speech is not modelled."""
    end = max([t["end"] for t in reference + hypothesis] or [0.0])
    n = int(np.ceil(end / STEP)) + 1
    ref_names = sorted({t["speaker"] for t in reference})
    hyp_names = sorted({t["speaker"] for t in hypothesis})
    ref = _grid(reference, {s: i for i, s in enumerate(ref_names)}, n)
    scored = np.ones(n, bool)
    for t in reference:
        for edge in (t["start"], t["end"]):
            scored[max(int((edge - collar) / STEP), 0) : int((edge + collar) / STEP)] = False
    total = float(((ref >= 0) & scored).sum())
    if total == 0:
        return 0.0
    best = np.inf
    width = max(len(ref_names), len(hyp_names))
    for perm in permutations(range(width), len(hyp_names)):
        hyp = _grid(hypothesis, {s: perm[i] for i, s in enumerate(hyp_names)}, n)
        miss = (ref >= 0) & (hyp < 0)
        false_alarm = (ref < 0) & (hyp >= 0)
        confusion = (ref >= 0) & (hyp >= 0) & (ref != hyp)
        best = min(best, float(((miss | false_alarm | confusion) & scored).sum()))
    return best / total


def truth_clips(truth: dict, shot_opts: ShotOptions, clip_opts: ClipOptions) -> list[dict]:
    """The clips a perfect pipeline would cut from a raw demo source, by the same rules."""
    bounds = [0, *truth["cuts"], truth["num_frames"]]
    kept, _ = select_shots(
        list(zip(bounds[:-1], bounds[1:])), truth["num_frames"], truth["fps"], shot_opts
    )
    shots = []
    for shot in kept:
        mid = (shot["start"] + shot["end"]) / 2
        true = next(s for s in truth["shots"] if s["start"] <= mid < s["end"])
        faces = [{"box": true["faces"][k]} for k in "AB"]
        binding = {k: {"face": i, "sync": 1.0, "conf": 1.0} for i, k in enumerate("AB")}
        shots.append({**shot, "faces": faces, "binding": binding})
    source = {k: truth[k] for k in ("ytid", "fps", "height", "width")}
    return plan_clips(source, shots, truth["speech"], clip_opts)


def _inside(bbox: list[float], box: list[int], width: int, height: int) -> bool:
    """Is the centre of a normalised crop inside a pixel box?"""
    cx, cy = (bbox[0] + bbox[2]) / 2 * width, (bbox[1] + bbox[3]) / 2 * height
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def binding_accuracy(clips: list[dict], truth: dict) -> float:
    """Share of clips whose crop is centred on the true face of the clip's person."""
    fps = truth["fps"]
    right = []
    for clip in clips:
        mid = (clip["start"] + clip["duration"] / 2) * fps
        shot = next(s for s in truth["shots"] if s["start"] <= mid < s["end"])
        right.append(
            _inside(clip["bbox"], shot["faces"][clip["speaker"]], truth["width"], truth["height"])
        )
    return float(np.mean(right)) if right else 0.0


def clip_match(found: list[dict], expected: list[dict], tolerance: float = 0.3) -> float:
    """Share of expected clips found with the same name and a window within `tolerance` s."""
    by_stem = {c["stem"]: c for c in found}
    hits = 0
    for clip in expected:
        got = by_stem.get(clip["stem"])
        end = clip["start"] + clip["duration"]
        if (
            got
            and abs(got["start"] - clip["start"]) <= tolerance
            and abs(got["start"] + got["duration"] - end) <= tolerance
        ):
            hits += 1
    return hits / len(expected) if expected else 1.0
