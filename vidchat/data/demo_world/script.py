"""Conversation scripts: who talks when, with which emotion, and the face motion of each clip.

Dialogue rule the responder follows: it mirrors the partner's emotion (so a conversation keeps
the emotion its first speaker sets; the listener's face shows it too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidchat.data.demo_world.face import CURVATURE, UPPER_FACE, FaceTrack
from vidchat.data.demo_world.speech import EMOTIONS, audio_envelope, mouth_from_envelope


@dataclass
class TurnPlan:
    index: int  # turn number within the conversation
    speaker: int  # 0 or 1: which of the two people talks
    emotion: str
    num_frames: int
    start: float  # seconds from the conversation start


@dataclass
class ConversationPlan:
    conversation: str  # also the SpeakerVid "source video id"
    people: tuple[int, int]  # identity indices of person 0 and person 1
    turns: list[TurnPlan]
    quality: bool  # passes the SFT thresholds (synthetic quality scores)


def respond_emotion(partner_emotion: str) -> str:
    """The demo world's dialogue rule: the responder mirrors the partner's emotion."""
    return partner_emotion


def plan_conversation(
    rng: np.random.Generator,
    name: str,
    num_identities: int,
    num_turns: int,
    turn_seconds: tuple[float, float],
    fps: int,
    sft_fraction: float,
) -> ConversationPlan:
    people = tuple(int(i) for i in rng.choice(num_identities, size=2, replace=False))
    first = int(rng.integers(0, 2))
    emotion = str(rng.choice(EMOTIONS))
    turns, start = [], 0.0
    for k in range(num_turns):
        num_frames = round(rng.uniform(*turn_seconds) * fps)
        turns.append(TurnPlan(k, (first + k) % 2, emotion, num_frames, start))
        start += num_frames / fps
        emotion = respond_emotion(emotion)
    return ConversationPlan(name, people, turns, bool(rng.random() < sft_fraction))  # type: ignore[arg-type]


def _blinks(rng: np.random.Generator, num_frames: int, fps: int) -> np.ndarray:
    """Eye openness [T]: open, with a ~0.15 s blink every 1.5-4 s."""
    eye = np.ones(num_frames)
    shape = np.array([0.5, 0.1, 0.1, 0.5])
    t = rng.uniform(0.3, 2.0)
    while (i := round(t * fps)) < num_frames:
        eye[i : i + len(shape)] = shape[: num_frames - i]
        t += rng.uniform(1.5, 4.0)
    return eye


def face_track(
    rng: np.random.Generator,
    num_frames: int,
    fps: int,
    emotion: str,
    mouth_open: np.ndarray | None,
    sway: float = 1.0,
    upper_face: bool = False,
) -> FaceTrack:
    """Motion of one clip: talking (mouth follows `mouth_open [T]`) or listening (mouth shut,
    1-2 nods); `sway` scales the head's motion (0: a still head; the same random draws);
    `upper_face` lets the brows and eyes show the emotion too (`UPPER_FACE`), not only the mouth
    corners."""
    t = np.arange(num_frames) / fps
    dx = 0.012 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 2 * np.pi))
    dy = 0.008 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 2 * np.pi))
    if mouth_open is None:  # listener: nods (two down-up cycles in 0.7 s)
        mouth_open = np.zeros(num_frames)
        for _ in range(int(rng.integers(1, 3))):
            t0 = rng.uniform(0, max(t[-1] - 0.7, 0.01))
            inside = (t >= t0) & (t < t0 + 0.7)
            dy = dy + inside * 0.025 * np.sin(np.pi * (t - t0) / 0.35) ** 2
    lift, tilt, eyes = UPPER_FACE[emotion] if upper_face else (0.0, 0.0, 1.0)
    return FaceTrack(
        mouth_open=np.asarray(mouth_open, np.float64),
        eye_open=_blinks(rng, num_frames, fps) * eyes,
        dx=sway * dx,
        dy=sway * dy,
        curvature=CURVATURE[emotion],
        brow_lift=lift,
        brow_tilt=tilt,
    )


def speaking_track(
    rng: np.random.Generator,
    audio: np.ndarray,
    sample_rate: int,
    fps: float,
    emotion: str,
    upper_face: bool = False,
) -> FaceTrack:
    """A talking face's track at `fps` whose mouth follows `audio [S]` (any speech, with its
    pauses), read as the world's 24 fps render reads it (`audio_envelope`'s window); one frame
    per `1 / fps` of the audio. `upper_face`: the emotion shows in the brows and eyes too, as
    in a world with `data.expression=face`."""
    num_frames = int(len(audio) / sample_rate * fps)
    env = audio_envelope(audio, sample_rate, fps, num_frames, window=1 / 24)
    mouth = mouth_from_envelope(env)
    return face_track(rng, num_frames, int(fps), emotion, mouth, upper_face=upper_face)
