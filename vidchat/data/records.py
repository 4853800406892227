"""Clip and turn records: what a manifest lists, independent of where the data came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vidchat.errors import VidchatError
from vidchat.media import Clip, read_clip
from vidchat.media.frames import Size

BRANCHES = ("single", "dialogue", "listening", "multi_turn")


@dataclass
class ClipRecord:
    """One person's clip: where to read it and what is known about it."""

    clip_id: str
    path: str  # video file (absolute once loaded)
    branch: str = "single"  # "single" for a talking clip, "listening" for a silent listener
    speaker_id: str = ""  # identity of the person in the clip
    start: float = 0.0  # read window inside `path`, seconds
    duration: float | None = None  # None: to the end of the file
    bbox: list[float] | None = None  # normalised [x1, y1, x2, y2] crop
    is_talking: bool = True
    scores: dict[str, float] = field(default_factory=dict)  # quality scores (dover, face_blur, ...)
    labels: dict[str, Any] = field(default_factory=dict)  # anything else (demo labels, ASR, ...)
    audio_path: str | None = None  # separate audio file, if the video has none
    conversation: str = ""  # source video / conversation: pairs and splits group by it
    time: float = 0.0  # position in the conversation, seconds (orders turns)
    reference: str | None = None  # reference image of this clip's person, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> ClipRecord:
        """From a dict (unknown keys ignored); relative paths resolve against `base_dir`."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known and v is not None}
        if "path" not in kwargs:
            raise KeyError("path")
        for key in ("path", "audio_path", "reference"):
            if key in kwargs:
                kwargs[key] = resolve_path(kwargs[key], base_dir)
        kwargs.setdefault("clip_id", Path(kwargs["path"]).stem)
        for key in ("start", "time"):
            if key in kwargs:
                kwargs[key] = float(kwargs[key])
        if "duration" in kwargs:
            kwargs["duration"] = float(kwargs["duration"])
        if "is_talking" in kwargs:
            kwargs["is_talking"] = bool(kwargs["is_talking"])
        return cls(**kwargs)


@dataclass
class TurnPair:
    """A partner turn and the responder's answer to it (or, for `listening`, the listener's face
    while the partner talks); `history` holds earlier turns for the `multi_turn` branch."""

    pair_id: str
    branch: str  # "dialogue", "listening" or "multi_turn"
    partner: ClipRecord
    responder: ClipRecord | None  # None in inference manifests (nothing to compare against)
    history: list[ClipRecord] = field(default_factory=list)
    reference: str | None = None  # responder's reference image (identity conditioning)
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def conversation(self) -> str:
        return self.partner.conversation


def resolve_path(value: str | Path, base_dir: Path | None) -> str:
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path)


def read_record(
    record: ClipRecord,
    fps: float | None = None,
    size: Size | None = None,
    sample_rate: int | None = None,
    require_audio: bool = True,
) -> Clip:
    """Decode a record's window (its crop, its separate audio file if any) -> `Clip`."""
    clip = read_clip(
        record.path,
        fps=fps,
        size=size,
        sample_rate=sample_rate,
        start=record.start,
        duration=record.duration,
        bbox=record.bbox,
        require_audio=require_audio and record.audio_path is None,
    )
    if record.audio_path is not None:
        clip.audio = read_clip(
            record.audio_path,
            sample_rate=clip.sample_rate,
            start=record.start,
            duration=clip.duration,
            require_video=False,
        ).audio
    return clip


def check_branch(branch: str, where: str) -> str:
    if branch not in BRANCHES:
        raise VidchatError(f"{where}: unknown branch {branch!r}; expected one of {BRANCHES}")
    return branch
