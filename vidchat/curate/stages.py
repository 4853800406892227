"""The per-source work of each curation stage: plain functions from files to JSON-able dicts.

`vidchat.curate.pipeline` runs them on Ray and stores each result; here they only compute.
A source that cannot be used raises `BadSource` with the reason (counted, never fatal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from vidchat.curate.bind import bind, correlations, speaker_frames
from vidchat.curate.dover import DoverOptions, dover_score
from vidchat.curate.faces import FaceOptions, detect_tracks, mouth_track
from vidchat.curate.hands import HandOptions, hand_sharpness
from vidchat.curate.quality import clarity, face_sharpness
from vidchat.curate.shots import ShotOptions, detect_cuts, mean_luma, select_shots
from vidchat.curate.speech import SpeechOptions, diarise, read_rttm, turns_from_rttm
from vidchat.curate.syncnet_bind import SyncOptions, syncnet_scores
from vidchat.media import MediaError, probe, read_clip
from vidchat.perception.signal import frame_rms

SAMPLE_RATE = 16000


class BadSource(Exception):
    """This source cannot be curated (the message says why)."""


@dataclass(frozen=True)
class StageOptions:
    shots: ShotOptions = field(default_factory=ShotOptions)
    speech: SpeechOptions = field(default_factory=SpeechOptions)
    faces: FaceOptions = field(default_factory=FaceOptions)
    min_sync: float = 0.1  # a voice binds to a face only above this correlation
    sync: SyncOptions = field(default_factory=SyncOptions)  # SyncNet binding, given its weights
    dover: DoverOptions = field(default_factory=DoverOptions)  # DOVER scores, given its weights
    hands: HandOptions = field(default_factory=HandOptions)  # hand blur, given a hand detector


class PeopleModels(NamedTuple):
    """What the people stage runs: dlib's face detector and landmark predictor, and the
    networks the user gave (SyncNet, DOVER, a hand detector; None when not given)."""

    detector: Any
    predictor: Any
    syncnet: Any = None
    dover: Any = None
    hands: Any = None


def shots_stage(path: str, opts: StageOptions) -> dict:
    """Probe the source and find its shots."""
    try:
        info = probe(path)
    except MediaError as exc:
        raise BadSource(f"unreadable: {exc}") from exc
    if info.width is None:
        raise BadSource("no video stream")
    if info.sample_rate is None:
        raise BadSource("no audio stream")
    fps = float(info.fps or 25.0)
    num_frames = int(info.num_frames or round(float(info.duration or 0.0) * fps))
    try:
        scenes = detect_cuts(path, opts.shots)
    except Exception as exc:  # PySceneDetect raises its own and OpenCV/PyAV errors
        raise BadSource(f"shot detection failed: {exc}") from exc
    kept, dropped = select_shots(scenes, num_frames, fps, opts.shots)
    return {
        "source": {
            "fps": fps,
            "height": info.height,
            "width": info.width,
            "num_frames": num_frames,
            "duration": num_frames / fps,
            "clarity": clarity(path, int(info.height), int(info.width)),
        },
        "cuts": [int(a) for a, _ in scenes[1:]],
        "shots": kept,
        "dropped_shots": dropped,
    }


def speech_stage(path: str, models: tuple, opts: StageOptions) -> dict:
    """Voice activity and diarisation of the source's audio; `models` = (voice encoder, ASR scorer
    or None)."""
    encoder, scorer = models
    try:
        clip = read_clip(path, sample_rate=SAMPLE_RATE, require_video=False)
    except MediaError as exc:
        raise BadSource(f"audio unreadable: {exc}") from exc
    if opts.speech.rttm_dir:  # an outside diarizer's turns
        rttm = Path(opts.speech.rttm_dir) / f"{Path(path).stem}.rttm"
        if not rttm.is_file():
            raise BadSource(f"no diarisation: {rttm} is missing")
        result = turns_from_rttm(read_rttm(rttm))
    else:
        result = diarise(clip.audio, SAMPLE_RATE, encoder, opts.speech)
    if not result["turns"]:
        raise BadSource("no speech found")
    if scorer is not None:
        from vidchat.curate.asr import score_turns

        score_turns(clip.audio, result["turns"], scorer)
    return result


def people_stage(
    path: str, shots: dict, speech: dict, models: PeopleModels, opts: StageOptions
) -> dict:
    """Per kept shot: luminance check, face tracks, their mouths, voice-face binding."""
    fps = shots["source"]["fps"]
    out, dropped = [], []
    for shot in shots["shots"]:
        try:
            clip = read_clip(
                path,
                sample_rate=SAMPLE_RATE,
                start=shot["start"] / fps,
                duration=(shot["end"] - shot["start"]) / fps,
            )
        except MediaError as exc:
            raise BadSource(f"video unreadable: {exc}") from exc
        reason, entry = _analyse_shot(clip, shot, speech["turns"], models, opts)
        if reason:
            dropped.append({"start": shot["start"], "end": shot["end"], "reason": reason})
        else:
            out.append(entry)
    if not out and any(d["reason"] == "no face" for d in dropped):
        raise BadSource("no face found in any shot")
    return {"shots": out, "dropped_shots": dropped}


def _analyse_shot(
    clip: Any, shot: dict, turns: list[dict], models: PeopleModels, opts: StageOptions
) -> tuple[str | None, dict]:
    frames = clip.frames  # [T,H,W,3]
    luma = mean_luma(frames[:: max(1, len(frames) // 10)])
    lo, hi = opts.shots.luminance
    if not lo <= luma <= hi:
        return f"luminance {luma:.0f} outside [{lo:g}, {hi:g}]", {}
    tracks = detect_tracks(frames, models.detector, opts.faces)
    if not tracks:
        return "no face", {}
    talk = speaker_frames(turns, shot["start"], shot["start"] + len(frames), clip.fps)
    if models.syncnet is not None:
        boxes = [t["box"] for t in tracks]
        r = syncnet_scores(models.syncnet, frames, clip.audio, clip.fps, boxes, talk, opts.sync)
        min_sync = opts.sync.min_conf
    else:
        mouths = [mouth_track(frames, t["box"], models.predictor) for t in tracks]
        envelope = frame_rms(clip.audio, SAMPLE_RATE, clip.fps, len(frames))  # [T]
        r, min_sync = correlations(mouths, envelope, talk), opts.min_sync
    _score_faces(frames, tracks, models, opts)
    return None, {
        **shot,
        "luminance": round(luma, 2),
        "faces": tracks,
        "correlations": r,
        "binding": bind(r, len(tracks), min_sync),
    }


def _score_faces(frames: Any, tracks: list[dict], models: PeopleModels, opts: StageOptions) -> None:
    """Each face track's sharpness, and with their networks its DOVER score and hand sharpness
    (in place)."""
    dover, hands = models.dover, models.hands
    h, w = frames.shape[1:3]
    sampled = frames[:: max(1, len(frames) // 10)]
    for track in tracks:
        box = [track["box"][0] / w, track["box"][1] / h, track["box"][2] / w, track["box"][3] / h]
        track["sharpness"] = face_sharpness(sampled, box)
        if dover is not None:
            track["dover"] = dover_score(dover, frames, track["box"], opts.dover)
    if hands is not None:
        found = hand_sharpness(hands, frames, [t["box"] for t in tracks], opts.hands)
        for track, value in zip(tracks, found):
            if value is not None:
                track["hand_sharpness"] = value
