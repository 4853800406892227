"""Small samples in the SpeakerVid-5M release layout, for the loader, `cut` and whole-path tests.

- `write_release(root, annos, ...)`: annotation files (as tar batches or extracted), raw_labels
  scores, SFT_set.json and testset.json, with empty placeholder clip files unless told not to.
- `build_real_release(root)`: real faces and real speech (the carphone recording and LibriVox
  readings, `tests/real_media.py`) cut into two-person source videos, with their annotations.
  Person A is the carphone face; person B is the same recording mirrored and tinted, a second
  real face. While one talks, the other's half of the frame holds still (a listener).
  `pretrain_source=True` adds a fourth source whose clips SFT_set.json leaves out, as the release
  does for most clips: the pretrain subset (`data.subset=pretrain`) then has training clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidchat.data.speakervid.archive import write_tar_batch
from vidchat.data.speakervid.names import clip_stem, parse_clip_name

GOOD = {"hand_blur": 0.6, "face_blur": 0.8, "dover": 0.7, "motion": 3, "asr_conf": -0.5}


def anno(stem: str, start: float, duration: float, **extra) -> dict:
    """A per-clip annotation with the keys the release's pipeline writes."""
    name = parse_clip_name(stem)
    assert name is not None, stem
    return {
        "video_name": name.ytid,
        "num_frames": round(duration * 25),
        "is_talking": not name.listener,
        "clip_speaker_num": 2,
        "clear": 1.1,
        "video_total_duration": 120.0,
        "start_seconds": max(start - 0.2, 0.0),
        "end_seconds": start + duration + 0.2,
        "start": start,
        "duration": duration,
        "bbox": [0.0, 0.0, 0.5, 1.0] if name.speaker == "A" else [0.5, 0.0, 1.0, 1.0],
        "conf": 6.5 if not name.listener else 0.0,
        "sync": {"0": [[6.5, 7.1, 0]]},
        "speaker": ["A", "B"],
        "raw_video_height": name.height,
        "raw_video_width": name.width,
        "clip_video_height": name.height,
        "clip_video_width": name.width // 2,
        "future_key_nobody_knows": {"x": 1},  # unknown keys are ignored
        **extra,
    }


def write_release(
    root: Path,
    annos: dict[str, dict],
    scores: dict[str, dict] | None = None,
    sft: list[str] = (),
    testset: list | None = None,
    tar: bool = True,
    media: bool = True,
) -> Path:
    """{stem: annotation} -> a release at `root`; `media`: empty clip files under videos/."""
    docs = [(f"{stem}.json", json.dumps(a).encode()) for stem, a in sorted(annos.items())]
    _write_docs(root / "merged_anno", docs, tar, batch=3)
    score_docs = [(f"{s}.json", json.dumps(v).encode()) for s, v in sorted((scores or {}).items())]
    _write_docs(root / "raw_labels" / "l_score", score_docs, tar, batch=2)
    (root / "SFT_set.json").write_text(json.dumps(list(sft)))
    (root / "testset.json").write_text(json.dumps(testset or []))
    (root / "all_data_list.json").write_text(json.dumps(sorted(annos)))
    if media:
        for stem in annos:
            folder = root / "videos" / parse_clip_name(stem).ytid
            folder.mkdir(parents=True, exist_ok=True)
            for ext in (".mp4", ".wav"):
                (folder / f"{stem}{ext}").touch()
    return root


def _write_docs(folder: Path, docs: list[tuple[str, bytes]], tar: bool, batch: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if tar:
        for k in range(0, len(docs), batch):
            write_tar_batch(folder / f"tar_batch_{k // batch}.tar.gz", docs[k : k + batch])
    else:
        for name, data in docs:
            (folder / name).write_bytes(data)


# --- real media ---------------------------------------------------------------------------

SOURCES = ("car_phone-01", "car-phone_02", "carphone-03")  # YouTube-like ids with _ and -
TURN_SECONDS = 4.0  # one carphone recording per turn
SIZE = (144, 352)  # source frame: person A on the left half, person B on the right
PRETRAIN_SOURCE = "talk_show-04"  # in the train split; its clips are not in SFT_set.json
TINTS = [(1.0, 0.85, 0.7), (0.75, 0.9, 1.1), (0.9, 1.1, 0.8), (1.1, 0.8, 0.9)]


def _people(carphone: Path, tint: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Frames [T,144,176,3] of person A (the carphone face) and person B (mirrored, tinted)."""
    from vidchat.media import read_clip

    a = read_clip(carphone, fps=25, require_audio=False).frames[: round(25 * TURN_SECONDS)]
    b = np.clip(a[:, :, ::-1].astype(np.float32) * np.array(tint, np.float32), 0, 255)
    return a, b.astype(np.uint8)


def _speech(path: Path, seconds: float) -> np.ndarray:
    from vidchat.media import read_clip

    wave = read_clip(path, sample_rate=16000, require_video=False).audio
    out = np.zeros(round(seconds * 16000), np.float32)
    out[: min(len(out), len(wave))] = wave[: len(out)]
    return out


def build_real_release(
    root: Path, sources_dir: Path, carphone: Path, wavs: list[Path], pretrain_source: bool = False
) -> Path:
    """Three two-turn source videos (A talks, then B) at `sources_dir/{ytid}.mp4`, and their
    release annotations at `root`: per turn, the talker's clip and the other's listener clip.
    SOURCES[-1] is VidChatBench's test pair; every clip is in SFT_set.json, except those of
    `PRETRAIN_SOURCE`, a fourth source when `pretrain_source`."""
    from vidchat.media import write_clip

    annos, scores, pairs, sft = {}, {}, [], []
    h, w = SIZE
    for s, ytid in enumerate(SOURCES + ((PRETRAIN_SOURCE,) if pretrain_source else ())):
        a, b = _people(carphone, TINTS[s])
        still_a, still_b = np.repeat(a[:1], len(a), 0), np.repeat(b[:1], len(b), 0)
        frames = np.concatenate(
            [
                np.concatenate([a, still_b], 2),  # turn 0: A talks
                np.concatenate([still_a, b], 2),
            ]
        )
        audio = np.concatenate(
            [
                _speech(wavs[(2 * s) % len(wavs)], TURN_SECONDS),
                _speech(wavs[(2 * s + 1) % len(wavs)], TURN_SECONDS),
            ]
        )
        write_clip(sources_dir / f"{ytid}.mp4", frames, audio, 25, 16000)
        stems = []
        for scene, talker in enumerate("AB"):
            listener = "B" if talker == "A" else "A"
            start = scene * TURN_SECONDS + 0.2  # the tight window inside the scene
            for letter, silent in ((talker, False), (listener, True)):
                stem = clip_stem(ytid, h, w, scene, letter, silent)
                annos[stem] = anno(
                    stem,
                    start,
                    TURN_SECONDS - 0.4,
                    start_seconds=scene * TURN_SECONDS,
                    end_seconds=(scene + 1) * TURN_SECONDS,
                )
                scores[stem] = dict(GOOD)
                stems.append(stem)
        if ytid == SOURCES[-1]:
            pairs.append({"partner": stems[0], "responder": stems[2]})
        if ytid != PRETRAIN_SOURCE:
            sft += stems
    return write_release(root, annos, scores, sft=sorted(sft), testset=pairs, media=False)


def real_release(root: Path, pretrain_source: bool = False) -> Path:
    """`build_real_release` into `root/release` and `root/sources`, from the real recordings."""
    from tests.real_media import carphone_path, librivox_wavs

    carphone, wavs = carphone_path(), [w for w, _ in librivox_wavs()]
    build_real_release(root / "release", root / "sources", carphone, wavs, pretrain_source)
    return root
