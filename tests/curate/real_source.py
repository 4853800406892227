"""A raw source from real recordings: the pyannote two-speaker sample (real voices, with its
RTTM) as the conversation, the carphone face as both people (person B mirrored and tinted).
Whoever speaks (by the RTTM) moves, the other holds still; the shots change the room and swap
the sides at 10 s and 20 s."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidchat.curate.speech import read_rttm
from vidchat.media import read_clip, write_clip

FPS, HEIGHT, WIDTH, CUTS = 25, 176, 400, (250, 500)


def _tiles(face_path: Path) -> tuple[np.ndarray, np.ndarray]:
    frames = read_clip(face_path, fps=FPS, require_audio=False).frames  # [T,144,176,3]
    tinted = np.clip(frames[:, :, ::-1].astype(np.float32) * [0.9, 1.0, 1.15], 0, 255)
    return frames, tinted.astype(np.uint8)


def compose_real_source(face_path: Path, wav_path: Path, rttm_path: Path, root: Path) -> dict:
    """Write `root/real0000.mp4` and its truth (as the demo raw sources') -> the truth."""
    sound = read_clip(wav_path, require_video=False)
    audio, rate = sound.audio, sound.sample_rate
    turns = read_rttm(rttm_path)
    first = min(turns, key=lambda t: t["start"])["speaker"]
    letter = {first: "A", next(t["speaker"] for t in turns if t["speaker"] != first): "B"}
    n = int(len(audio) / rate * FPS)
    talking = {k: np.zeros(n, bool) for k in "AB"}
    for t in turns:
        talking[letter[t["speaker"]]][int(t["start"] * FPS) : int(t["end"] * FPS)] = True
    tiles = dict(zip("AB", _tiles(face_path)))
    h, w = tiles["A"].shape[1:3]
    frames = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    shots, bounds = [], [0, *CUTS, n]
    for k, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        frames[start:end] = (60 + 70 * k, 120, 200 - 60 * k)
        lefts = {"A": 12, "B": WIDTH - w - 12} if k % 2 == 0 else {"A": WIDTH - w - 12, "B": 12}
        for who, left in lefts.items():
            clock, shown = 0, []
            for t in range(start, end):  # the face plays while its person talks, else holds
                clock += talking[who][t]
                shown.append(tiles[who][clock % len(tiles[who])])
            frames[start:end, 16 : 16 + h, left : left + w] = np.stack(shown)
        shots.append(
            {
                "start": start,
                "end": end,
                "faces": {who: [left, 16, left + w, 16 + h] for who, left in lefts.items()},
            }
        )
    write_clip(root / "real0000.mp4", frames, audio[: round(n / FPS * rate)], FPS, rate)
    truth = {
        "ytid": "real0000",
        "fps": FPS,
        "num_frames": n,
        "height": HEIGHT,
        "width": WIDTH,
        "cuts": list(CUTS),
        "shots": shots,
        "speech": [{**t, "speaker": letter[t["speaker"]]} for t in turns],
    }
    (root / "truth").mkdir(exist_ok=True)
    (root / "truth" / "real0000.json").write_text(json.dumps(truth))
    return truth
