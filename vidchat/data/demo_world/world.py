"""The demo world: synthetic dyadic conversations written as real clips in the release layout.

Two cartoon people take turns talking; each turn gives two clips cut from the "scene": the
speaker's (talking, lip-synced to their speech) and the listener's (silent face, nodding, with the
speaker's audio). Everything is written as the SpeakerVid-5M release is laid out, with cut clips
as the official cut script writes them, so that one loader (`vidchat.data.speakervid`) reads both
and every demo test exercises the real schema:

    root/merged_anno/tar_batch_*.tar.gz   one {ytid}_full_video_{H}x{W}_{scene:03d}_{speaker}.json
                                          per clip: release keys + "demo" labels (identity,
                                          emotion, role, syllable times, per-frame mouth opening)
    root/raw_labels/l_score/tar_batch_*   per-clip quality scores (batched differently)
    root/videos/{ytid}/{stem}.mp4, .wav   64x64 H.264 video only, 24 fps; 16 kHz mono wav
    root/refs/{identity}.png              neutral face: the reference image for identity conditioning
    root/all_data_list.json, SFT_set.json, testset.json, splits.json, identities.json
    root/test_pairs.jsonl                 test pairs in the infer/eval JSONL format

`ytid` is the conversation (`demo0014`), the scene is the turn, `A` is whoever talks first.
Generate with `python -m vidchat.data.sources.demo [root]` or
`vidchat.data.sources.demo.ensure_demo_world(root, cfg)`; the result is cached under a marker
holding the generator version and a hash of the config.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vidchat.data.demo_world.face import measure_mouth_opening, neutral_track, render_face
from vidchat.data.demo_world.identities import Identity, make_identities
from vidchat.data.demo_world.script import ConversationPlan, face_track, plan_conversation
from vidchat.data.demo_world.speech import audio_envelope, mouth_from_envelope, synthesize_turn
from vidchat.data.pairing import SFT_THRESHOLDS
from vidchat.data.speakervid.archive import write_tar_batch
from vidchat.data.speakervid.names import clip_stem
from vidchat.errors import ConfigError
from vidchat.media import write_clip, write_image, write_wav
from vidchat.utils.atomic import atomic_write_json
from vidchat.utils.config import to_plain
from vidchat.utils.processes import exit_with_parent

GENERATOR_VERSION = 3  # 3: the release layout (clip names, tar batches, mp4 + wav)
MARKER = ".demo_world.json"
MANIFEST_FILE = "all_data_list.json"

__all__ = [
    "DemoWorldConfig",
    "generate_demo_world",
    "measure_mouth_opening",
    "audio_envelope",
]
ANNO_BATCH, SCORE_BATCH = 256, 200  # clips per tar batch (unequal, as in the release)
# data.expression: the mouth corners only, the brows and eyes as well, or each conversation
# one of the two (half and half at random): a motion tokenizer trained on `mixed` must draw a
# smile from the corners alone, as a `mouth` world shows it, not infer it from the eyes
EXPRESSIONS = ("mouth", "face", "mixed")


@dataclass
class DemoWorldConfig:
    """What the generator makes (the data config's other keys, e.g. read settings, are ignored)."""

    seed: int = 0
    num_identities: int = 8
    num_conversations: int = 48
    turns_per_conversation: int = 4
    turn_seconds: tuple[float, float] = (1.5, 3.0)
    fps: int = 24
    size: int = 64
    sample_rate: int = 16000
    val_fraction: float = 0.125
    test_fraction: float = 0.125
    sft_fraction: float = 0.6  # share of conversations whose quality scores pass SFT thresholds
    head_sway: float = 1.0  # scale of the heads' idle sway and nods (0: still heads)
    expression: str = "mouth"  # where emotion shows: mouth (corners) | face (+ brows, eyes)
    workers: int = 2  # processes rendering conversations (1 = in this process)

    @classmethod
    def from_cfg(cls, cfg: Any) -> DemoWorldConfig:
        """From a data config (DictConfig or dict); keys under `options` override top-level ones."""
        data = dict(to_plain(cfg))
        data = {**data, **dict(to_plain(data.get("options", {})))}
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "turn_seconds" in kwargs:
            lo, hi = (float(v) for v in kwargs["turn_seconds"])
            kwargs["turn_seconds"] = (lo, hi)
        out = cls(**kwargs)
        if out.num_identities < 2:
            raise ConfigError(f"data.num_identities must be >= 2, got {out.num_identities}")
        if out.num_conversations < 1 or out.turns_per_conversation < 2:
            raise ConfigError(
                "data.num_conversations must be >= 1 and data.turns_per_conversation >= 2"
            )
        if out.expression not in EXPRESSIONS:
            raise ConfigError(
                f"data.expression must be one of {list(EXPRESSIONS)}, got {out.expression!r}"
            )
        if out.head_sway < 0:
            raise ConfigError(f"data.head_sway must be >= 0, got {out.head_sway}")
        if not 0 < out.turn_seconds[0] <= out.turn_seconds[1]:
            raise ConfigError(
                f"data.turn_seconds must be [lo, hi] with 0 < lo <= hi, got {out.turn_seconds}"
            )
        return out

    def digest(self) -> str:
        """Hash of what shapes the output (not `workers`; `head_sway` and `expression` only away
        from their defaults, so that worlds made before they existed keep their hash)."""
        content = {k: v for k, v in asdict(self).items() if k != "workers"}
        if content["head_sway"] == 1.0:
            del content["head_sway"]
        if content["expression"] == "mouth":
            del content["expression"]
        text = json.dumps({"version": GENERATOR_VERSION, **content}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _scores(rng: np.random.Generator, good: bool, talking: bool) -> dict[str, float]:
    """Synthetic quality scores on the paper's scales; `good` clips pass every SFT threshold."""
    if good:
        scores = {
            "hand_blur": rng.uniform(0.55, 0.95),
            "face_blur": rng.uniform(0.75, 0.98),
            "dover": rng.uniform(0.62, 0.9),
            "motion": rng.uniform(2.2, 4.5),
            "asr_conf": rng.uniform(-0.9, -0.1),
        }
    else:
        scores = {
            "hand_blur": rng.uniform(0.1, 0.9),
            "face_blur": rng.uniform(0.3, 0.69),  # always below the SFT face-blur threshold
            "dover": rng.uniform(0.3, 0.8),
            "motion": rng.uniform(1.0, 4.0),
            "asr_conf": rng.uniform(-1.5, -0.2),
        }
    scores["clear"] = rng.uniform(0.8, 1.6)
    scores["conf"] = rng.uniform(5.0, 9.0) if talking else rng.uniform(0.0, 2.0)
    return {k: round(float(v), 4) for k, v in scores.items()}


def _split_of(index: int, total: int, cfg: DemoWorldConfig) -> str:
    """Conversations go, in a seeded shuffle order, to test, then val, then train."""
    n_test = max(1, round(total * cfg.test_fraction)) if total >= 3 else 0
    n_val = max(1, round(total * cfg.val_fraction)) if total >= 3 else 0
    if index < n_test:
        return "test"
    if index < n_test + n_val:
        return "val"
    return "train"


def _upper_face(cfg: DemoWorldConfig, conversation: str) -> bool:
    """Whether a conversation's emotion shows in the brows and eyes too (`data.expression`);
    `mixed` draws it from its own stream, so the rest of the conversation is as in the other
    worlds."""
    if cfg.expression != "mixed":
        return cfg.expression == "face"
    return bool(np.random.default_rng([cfg.seed, 2, int(conversation[4:])]).random() < 0.5)


def _render_conversation(
    plan: ConversationPlan, people: list[Identity], cfg: DemoWorldConfig, out: Path
) -> list[dict]:
    """Synthesise, render and write every clip of one conversation -> their annotations."""
    rng = np.random.default_rng([cfg.seed, 1, int(plan.conversation[4:])])
    upper_face = _upper_face(cfg, plan.conversation)
    annos = []
    total = sum(t.num_frames for t in plan.turns) / cfg.fps
    for turn in plan.turns:
        seconds = turn.num_frames / cfg.fps
        talker = people[plan.people[turn.speaker]]
        listener = people[plan.people[1 - turn.speaker]]
        speech, syllables = synthesize_turn(rng, talker, turn.emotion, seconds, cfg.sample_rate)
        env = audio_envelope(speech, cfg.sample_rate, cfg.fps, turn.num_frames)  # [T]
        mouth = mouth_from_envelope(env)
        for person, identity in ((turn.speaker, talker), (1 - turn.speaker, listener)):
            talking = identity is talker
            motion = mouth if talking else None
            track = face_track(
                rng,
                turn.num_frames,
                cfg.fps,
                turn.emotion,
                motion,
                cfg.head_sway,
                upper_face=upper_face,
            )
            frames = render_face(identity, track, cfg.size)
            letter = "A" if person == plan.turns[0].speaker else "B"  # A talks first
            name = clip_stem(
                plan.conversation, cfg.size, 2 * cfg.size, turn.index, letter, listener=not talking
            )
            clip_dir = out / "videos" / plan.conversation
            write_clip(clip_dir / f"{name}.mp4", frames, None, cfg.fps, cfg.sample_rate)
            write_wav(clip_dir / f"{name}.wav", speech, cfg.sample_rate)
            shot = _Shot(name, turn, person, identity, listener if talking else talker, talking)
            annos.append(_annotation(shot, plan, cfg, total, track, syllables, rng))
    return annos


@dataclass
class _Shot:
    """One person's clip of one turn."""

    name: str
    turn: Any  # demo.script.Turn
    person: int
    identity: Identity
    partner: Identity
    talking: bool


def _annotation(
    shot: _Shot,
    plan: ConversationPlan,
    cfg: DemoWorldConfig,
    total: float,
    track: Any,
    syllables: list,
    rng: np.random.Generator,
) -> dict:
    """The clip's SpeakerVid-5M style annotation, with the demo's own labels under `demo`."""
    turn, seconds = shot.turn, shot.turn.num_frames / cfg.fps
    return {
        "stem": shot.name,  # the file name in merged_anno (popped before writing)
        "video_name": f"{plan.conversation}_full_video_{cfg.size}x{2 * cfg.size}",
        "num_frames": turn.num_frames,
        "is_talking": shot.talking,
        "clip_speaker_num": 2,
        "video_total_duration": round(total, 4),
        "start": round(turn.start, 4),
        "duration": round(seconds, 4),
        "start_seconds": round(turn.start, 4),
        "end_seconds": round(turn.start + seconds, 4),
        "bbox": [0.0, 0.0, 1.0, 1.0],
        "speaker": ["A" if turn.speaker == 0 else "B"],
        "raw_video_height": cfg.size,
        "raw_video_width": 2 * cfg.size,
        "clip_video_height": cfg.size,
        "clip_video_width": cfg.size,
        "scores": _scores(rng, plan.quality, shot.talking),  # -> raw_labels, not merged_anno
        "demo": {
            "identity": shot.identity.name,
            "partner_identity": shot.partner.name,
            "emotion": turn.emotion,
            "role": "speaker" if shot.talking else "listener",
            "conversation": plan.conversation,
            "turn": turn.index,
            "person": shot.person,
            "reference": f"refs/{shot.identity.name}.png",
            "syllables": [[round(s.start, 3), round(s.end, 3)] for s in syllables]
            if shot.talking
            else [],
            "mouth_opening": [round(float(v), 3) for v in track.mouth_open],
        },
    }


def generate_demo_world(root: str | Path, cfg: DemoWorldConfig, progress: bool = True) -> Path:
    """Write the whole demo world into `root` (which must not exist) -> the manifest path.

    Writes the release files only; the test pairs (`testset.json`, `test_pairs.jsonl`) are made
    by the loader that reads them back (`vidchat.data.sources.demo.ensure_demo_world`)."""

    root = Path(root)
    (root / "videos").mkdir(parents=True)
    people = make_identities(cfg.num_identities, cfg.seed)
    for person in people:
        write_image(
            root / "refs" / f"{person.name}.png", render_face(person, neutral_track(), cfg.size)[0]
        )
    atomic_write_json(root / "identities.json", [p.to_dict() for p in people])

    rng = np.random.default_rng([cfg.seed, 0])
    plans = [
        plan_conversation(
            rng,
            f"demo{c:04d}",
            cfg.num_identities,
            cfg.turns_per_conversation,
            cfg.turn_seconds,
            cfg.fps,
            cfg.sft_fraction,
        )
        for c in range(cfg.num_conversations)
    ]
    order = np.random.default_rng([cfg.seed, 2]).permutation(len(plans))
    splits = {
        plans[i].conversation: _split_of(rank, len(plans), cfg) for rank, i in enumerate(order)
    }
    all_annos: list[dict] = []
    bar = tqdm(total=len(plans), desc="demo world", unit="conv", disable=not progress)
    workers = min(cfg.workers, len(plans) // 4)  # a process pool pays off from ~8 conversations
    if workers > 1:
        context = multiprocessing.get_context("spawn")  # safe with torch/threads in the parent
        with ProcessPoolExecutor(workers, mp_context=context, initializer=exit_with_parent) as pool:
            jobs = [pool.submit(_render_conversation, plan, people, cfg, root) for plan in plans]
            for job in jobs:
                all_annos.extend(job.result())
                bar.update()
    else:
        for plan in plans:
            all_annos.extend(_render_conversation(plan, people, cfg, root))
            bar.update()
    bar.close()
    _write_release_files(root, all_annos)
    atomic_write_json(root / "splits.json", splits)
    return root / MANIFEST_FILE


def _write_release_files(root: Path, annos: list[dict]) -> None:
    """merged_anno and raw_labels tar batches, the clip list and the SFT list."""
    stems = [a.pop("stem") for a in annos]
    scores = [a.pop("scores") for a in annos]
    docs = [(f"{s}.json", json.dumps(a, indent=1).encode()) for s, a in zip(stems, annos)]
    for k in range(0, len(docs), ANNO_BATCH):
        write_tar_batch(
            root / "merged_anno" / f"tar_batch_{k // ANNO_BATCH}.tar.gz", docs[k : k + ANNO_BATCH]
        )
    labels = [(f"{s}.json", json.dumps(v).encode()) for s, v in zip(stems, scores)]
    for k in range(0, len(labels), SCORE_BATCH):
        write_tar_batch(
            root / "raw_labels" / "l_score" / f"tar_batch_{k // SCORE_BATCH}.tar.gz",
            labels[k : k + SCORE_BATCH],
        )
    atomic_write_json(root / MANIFEST_FILE, stems)
    atomic_write_json(root / "SFT_set.json", [s for s, v in zip(stems, scores) if _passes(v)])


def _passes(scores: dict) -> bool:
    return all(float(scores.get(k, -np.inf)) > v for k, v in SFT_THRESHOLDS.items())
