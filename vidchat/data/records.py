"""Clip and turn records, and the `Manifest` that holds them with their splits: what every data
source produces, independent of where the data came from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vidchat.errors import ConfigError, VidchatError
from vidchat.media import Clip, probe, read_clip
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
    """Decode a record's window (its crop, its separate audio file if any) -> `Clip`.

    A video-only file with a same-named `.wav` beside it (the SpeakerVid-5M release's cut
    clips) takes its audio from the wav, so `infer.py --input clip.mp4` works on those too.
    Read at a square `size`, a non-square picture (the whole frame, or the record's bbox) is
    centre-cropped to a square first, so faces keep their proportions instead of being squashed,
    and a cut clip reads like its window of the source."""
    audio_path = getattr(record, "audio_path", None) or sibling_wav(record.path)
    start = float(record.start or 0.0)
    clip = read_clip(
        record.path,
        fps=fps,
        size=size,
        sample_rate=sample_rate,
        start=start,
        duration=record.duration,
        bbox=record.bbox,
        require_audio=require_audio and audio_path is None,
        keep_aspect=True,
    )
    if audio_path is not None:
        clip.audio = read_clip(
            audio_path,
            sample_rate=clip.sample_rate,
            start=start,
            duration=clip.duration,
            require_video=False,
        ).audio
    return clip


def source_signature(record: Any) -> dict[str, Any]:
    """What a clip's tokens are made from: the read window, and for the video and its audio
    (the record's `audio_path`, else the `.wav` beside the video, present or not) the absolute
    path, size and modification time. Token shards store it with each clip, so that tokens are
    never reused for other inputs: another `data.root`, other files under the same names, or a
    `.wav` added beside a clip that failed without one (`vidchat.data.shards`)."""
    video = Path(record.path).absolute()
    audio = getattr(record, "audio_path", None) or video.with_suffix(".wav")
    files = []
    for path in (video, Path(audio).absolute()):
        try:
            st = path.stat()
            files.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([str(path), None, None])
    duration = None if record.duration is None else float(record.duration)
    bbox = None if record.bbox is None else [float(v) for v in record.bbox]
    return {"files": files, "window": [float(record.start or 0.0), duration, bbox]}  # JSON-normal


def sibling_wav(path: str | Path) -> str | None:
    """`x.wav` beside a video-only `x.mp4`, if there is one."""
    wav = Path(path).with_suffix(".wav")
    if Path(path).suffix.lower() == ".wav" or not wav.is_file():
        return None
    return str(wav) if probe(path).sample_rate is None else None


def check_branch(branch: str, where: str) -> str:
    if branch not in BRANCHES:
        raise VidchatError(f"{where}: unknown branch {branch!r}; expected one of {BRANCHES}")
    return branch


SPLITS = ("train", "val", "test")


def filter_branches(pairs: Iterable[TurnPair], branches: Iterable[str]) -> list[TurnPair]:
    """Keep pairs of the named branches (`dialogue`, `listening`, `multi_turn`)."""
    wanted = set(branches)
    unknown = wanted - set(BRANCHES)
    if unknown:
        raise ConfigError(f"unknown branch(es) {sorted(unknown)}; expected some of {BRANCHES}")
    return [p for p in pairs if p.branch in wanted]


@dataclass
class Manifest:
    """All records, the pairs made from them, and which split each conversation belongs to."""

    records: list[ClipRecord]
    pairs: list[TurnPair]
    split_of: dict[str, str]  # conversation -> "train" | "val" | "test"
    root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def records_for(self, split: str, talking_only: bool = False) -> list[ClipRecord]:
        check_split(split)
        return [
            r
            for r in self.records
            if self.split_of.get(r.conversation) == split and (r.is_talking or not talking_only)
        ]

    def pairs_for(self, split: str, branches: Iterable[str] | None = None) -> list[TurnPair]:
        check_split(split)
        pairs = [p for p in self.pairs if self.split_of.get(p.conversation) == split]
        return filter_branches(pairs, branches) if branches is not None else pairs

    @property
    def splits(self) -> dict[str, list[str]]:
        """split -> sorted conversation ids."""
        out: dict[str, list[str]] = {s: [] for s in SPLITS}
        for conversation, split in sorted(self.split_of.items()):
            out[split].append(conversation)
        return out


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {SPLITS}")


def hashed_split(conversation: str, val_fraction: float, test_fraction: float = 0.0) -> str:
    """A stable split from the conversation id alone (same answer on every machine)."""
    u = int(hashlib.sha1(conversation.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"
