"""Raw demo sources: long split-screen conversations with cuts, and the truth about them.

What the curation pipeline (`vidchat.curate`) starts from, with known answers to score it by.
Each source is one mp4 (video and audio) of two demo people talking in turns, shown side by
side as in a video-call interview; the video is cut into shots, and each shot frames the two
people differently (room colour, face size and place, sometimes the sides swapped), so a shot
detector can find the cuts and a face tracker must re-find the people after each.

    root/{ytid}.mp4            H x W, 25 fps H.264, 16 kHz AAC
    root/truth/{ytid}.json     cuts (first frame of each shot), per shot the two faces' pixel
                               boxes, speech regions per speaker (A = who talks first), people

Faces are drawn `detailed` (shaded like a face) so that dlib's detector finds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vidchat.data.demo_world.face import render_face
from vidchat.data.demo_world.identities import Identity, make_identities
from vidchat.data.demo_world.script import face_track
from vidchat.data.demo_world.speech import (
    EMOTIONS,
    audio_envelope,
    mouth_from_envelope,
    synthesize_turn,
)
from vidchat.errors import ConfigError
from vidchat.media import write_clip
from vidchat.utils.atomic import atomic_write_json

TRUTH_DIR = "truth"
_MERGE_GAP = 0.35  # s: syllables closer than this form one speech region (word pauses)


@dataclass
class RawSourceConfig:
    seed: int = 0
    num_sources: int = 2
    num_identities: int = 32
    turns: int = 8
    turn_seconds: tuple[float, float] = (2.0, 4.0)
    pause_seconds: tuple[float, float] = (0.4, 0.9)  # silence between turns
    shot_seconds: tuple[float, float] = (4.0, 10.0)
    short_shot: bool = True  # one 2 s shot per source (the 3-14 s rule must drop it)
    fps: int = 25
    height: int = 160
    width: int = 320
    face_size: tuple[int, int] = (72, 88)  # per shot, drawn at random in this range
    sample_rate: int = 16000


@dataclass
class _Turn:
    speaker: int  # 0 or 1: person index
    start: float  # s from the source start
    speech: np.ndarray  # [S]
    regions: list[tuple[float, float]]  # speech regions, s from the source start


def _pick_people(rng: np.random.Generator, people: list[Identity]) -> tuple[Identity, Identity]:
    """Two people whose voices differ in timbre (vocal tract length) and by at least 30 Hz in
    pitch. Real speakers' voices differ in timbre; two demo voices that differ in pitch alone
    are one voice to a speaker-embedding network (Resemblyzer: DER 0.29-0.47 on such pairs,
    0.04-0.07 on pairs like these)."""
    while True:
        a, b = (people[int(i)] for i in rng.choice(len(people), 2, replace=False))
        if a.formant_scale != b.formant_scale and abs(a.f0 - b.f0) >= 30.0:
            return a, b


def _speech_regions(syllables: list, offset: float) -> list[tuple[float, float]]:
    regions: list[list[float]] = []
    for syl in syllables:
        if regions and syl.start - regions[-1][1] < _MERGE_GAP:
            regions[-1][1] = syl.end
        else:
            regions.append([syl.start, syl.end])
    return [(round(offset + s, 4), round(offset + e, 4)) for s, e in regions]


def _plan_turns(rng: np.random.Generator, pair: tuple, emotion: str, cfg: RawSourceConfig) -> list:
    first = int(rng.integers(0, 2))
    turns, t = [], float(rng.uniform(0.3, 0.8))
    for k in range(cfg.turns):
        speaker = (first + k) % 2
        seconds = float(rng.uniform(*cfg.turn_seconds))
        speech, syllables = synthesize_turn(rng, pair[speaker], emotion, seconds, cfg.sample_rate)
        turns.append(_Turn(speaker, t, speech, _speech_regions(syllables, t)))
        t += seconds + float(rng.uniform(*cfg.pause_seconds))
    return turns


def _plan_shots(rng: np.random.Generator, num_frames: int, cfg: RawSourceConfig) -> list[int]:
    """First frame of each shot; one 2 s shot somewhere in the middle when `short_shot`."""
    starts, t = [0], 0
    short_at = int(rng.integers(1, 3)) if cfg.short_shot else -1
    while True:
        seconds = 2.0 if len(starts) == short_at else float(rng.uniform(*cfg.shot_seconds))
        t += round(seconds * cfg.fps)
        if num_frames - t < 3 * cfg.fps:  # the remainder joins the last shot
            return starts
        starts.append(t)


def _mouths(turns: list[_Turn], num_frames: int, cfg: RawSourceConfig) -> np.ndarray:
    """Mouth opening [2,T] of each person: their own speech's envelope, shut otherwise."""
    mouths = np.zeros((2, num_frames))
    for turn in turns:
        lo = round(turn.start * cfg.fps)
        n = min(round(len(turn.speech) / cfg.sample_rate * cfg.fps), num_frames - lo)
        env = audio_envelope(turn.speech, cfg.sample_rate, cfg.fps, n)
        mouths[turn.speaker, lo : lo + n] = mouth_from_envelope(env)
    return mouths


def _shot_layout(rng: np.random.Generator, index: int, cfg: RawSourceConfig) -> dict:
    """Room colour, face size and each person's tile corner for one shot."""
    size = int(rng.integers(cfg.face_size[0], cfg.face_size[1] + 1))
    swap = index > 0 and rng.random() < 0.4
    top = [int(rng.integers(4, cfg.height - size - 4)) for _ in range(2)]
    left = [
        int(rng.integers(8, cfg.width // 2 - size - 8)),
        int(rng.integers(cfg.width // 2 + 8, cfg.width - size - 8)),
    ]
    if swap:
        left = left[::-1]
    room = [int(v) for v in rng.integers(20, 236, 3)]
    return {"size": size, "room": room, "corners": [(top[p], left[p]) for p in range(2)]}


def _render(
    pair: tuple,
    tracks: list,
    shots: list[int],
    layouts: list[dict],
    num_frames: int,
    cfg: RawSourceConfig,
) -> np.ndarray:
    """Frames [T,H,W,3] uint8: each shot's room with the two faces at their places."""
    frames = np.empty((num_frames, cfg.height, cfg.width, 3), np.uint8)
    ends = [*shots[1:], num_frames]
    for start, end, layout in zip(shots, ends, layouts):
        frames[start:end] = np.asarray(layout["room"], np.uint8)
        for person in range(2):
            part = _slice_track(tracks[person], start, end)
            tile = render_face(pair[person], part, layout["size"], detailed=True)
            top, left = layout["corners"][person]
            frames[start:end, top : top + layout["size"], left : left + layout["size"]] = tile
    return frames


def _slice_track(track, start: int, end: int):  # noqa: ANN001, ANN202 (a FaceTrack)
    cut = {k: (v[start:end] if isinstance(v, np.ndarray) else v) for k, v in vars(track).items()}
    return type(track)(**cut)


def render_source(
    ytid: str, index: int, people: list[Identity], cfg: RawSourceConfig, root: Path
) -> dict:
    """Write `root/{ytid}.mp4` and return its truth (also written to `root/truth/`)."""
    rng = np.random.default_rng([cfg.seed, 7, index])
    pair = _pick_people(rng, people)
    emotion = str(rng.choice(EMOTIONS))
    turns = _plan_turns(rng, pair, emotion, cfg)
    end = turns[-1].start + len(turns[-1].speech) / cfg.sample_rate + 0.5
    num_frames = round(end * cfg.fps)
    audio = np.zeros(round(num_frames / cfg.fps * cfg.sample_rate), np.float32)
    for turn in turns:
        lo = round(turn.start * cfg.sample_rate)
        audio[lo : lo + len(turn.speech)] += turn.speech[: len(audio) - lo]
    mouths = _mouths(turns, num_frames, cfg)
    tracks = [face_track(rng, num_frames, cfg.fps, emotion, mouths[p]) for p in range(2)]
    shots = _plan_shots(rng, num_frames, cfg)
    layouts = [_shot_layout(rng, i, cfg) for i in range(len(shots))]
    frames = _render(pair, tracks, shots, layouts, num_frames, cfg)
    write_clip(root / f"{ytid}.mp4", frames, audio, cfg.fps, cfg.sample_rate)
    letters = {turns[0].speaker: "A", 1 - turns[0].speaker: "B"}  # A talks first
    truth = {
        "ytid": ytid,
        "fps": cfg.fps,
        "num_frames": num_frames,
        "height": cfg.height,
        "width": cfg.width,
        "emotion": emotion,
        "cuts": shots[1:],
        "people": {letters[p]: pair[p].name for p in range(2)},
        "shots": [
            {"start": s, "end": e, "faces": {letters[p]: _box(lay, p) for p in range(2)}}
            for s, e, lay in zip(shots, [*shots[1:], num_frames], layouts)
        ],
        "speech": [
            {"speaker": letters[t.speaker], "start": s, "end": e}
            for t in turns
            for s, e in t.regions
        ],
    }
    atomic_write_json(root / TRUTH_DIR / f"{ytid}.json", truth)
    return truth


def _box(layout: dict, person: int) -> list[int]:
    """Pixel box [x0, y0, x1, y1] of a person's face tile in a shot."""
    top, left = layout["corners"][person]
    return [left, top, left + layout["size"], top + layout["size"]]


def generate_raw_sources(
    root: str | Path, cfg: RawSourceConfig, progress: bool = True
) -> list[dict]:
    """Write `cfg.num_sources` raw sources (`raw0000.mp4`, ...) into `root` -> their truths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    people = make_identities(cfg.num_identities, cfg.seed)
    names = [f"raw{i:04d}" for i in range(cfg.num_sources)]
    bar = tqdm(names, desc="raw sources", unit="source", disable=not progress)
    truths = []
    for i, name in enumerate(bar):
        truth = root / TRUTH_DIR / f"{name}.json"
        if (root / f"{name}.mp4").exists() and truth.exists():  # made before: kept as it is
            truths.append(json.loads(truth.read_text()))
        else:
            truths.append(render_source(name, i, people, cfg, root))
    return truths


def main(argv: list[str] | None = None) -> None:
    """`python -m vidchat.data.demo_world.raw ROOT [--sources N] [--seed S]`."""
    import argparse

    from vidchat.cli import ArgumentParser, exit_on_user_error

    parser = ArgumentParser(
        prog="python -m vidchat.data.demo_world.raw",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("root", help="folder to write the sources into (existing sources are kept)")
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    def make() -> None:
        if args.sources < 1:
            raise ConfigError(f"--sources must be >= 1, got {args.sources}")
        generate_raw_sources(args.root, RawSourceConfig(seed=args.seed, num_sources=args.sources))

    exit_on_user_error(make)


if __name__ == "__main__":
    main()
