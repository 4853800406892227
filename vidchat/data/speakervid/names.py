"""SpeakerVid-5M clip names: `{ytid}_full_video_{H}x{W}_{scene:03d}_{speaker}`.

The name (the per-clip JSON's file stem) is the clip id; the JSON's `video_name` is the *source*
video's and is shared by all clips cut from it. `speaker` is `A` (the main speaker who talks
first), `B`, or `A_None` / `B_None`: that person's face with no matched voice, a listener.
YouTube ids may hold `_` and `-`, so the name is split on `_full_video_`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

SEPARATOR = "_full_video_"
_TAIL = re.compile(
    r"^(?P<h>\d+)x(?P<w>\d+)_(?P<scene>\d+)_(?P<speaker>[A-Za-z0-9]+)(?P<none>_None)?$"
)


@dataclass(frozen=True)
class ClipName:
    """A parsed clip name. `speaker` is the person's letter (A or B) also for a listener."""

    stem: str
    ytid: str
    height: int
    width: int
    scene: int
    speaker: str
    listener: bool  # an `X_None` clip: person X's face without a matched voice

    @property
    def identity(self) -> str:
        """The person: one per source and speaker letter (a listener `B_None` is person B)."""
        return f"{self.ytid}_{self.speaker}"


def parse_clip_name(name: str) -> ClipName | None:
    """`stem` (or a file name / path ending in `.json`, `.mp4`, `.wav`) -> ClipName, or None
    when it is not a release clip name."""
    stem = stem_of(name)
    ytid, sep, tail = stem.rpartition(SEPARATOR)
    match = _TAIL.match(tail) if sep and ytid else None
    if match is None:
        return None
    return ClipName(
        stem=stem,
        ytid=ytid,
        height=int(match["h"]),
        width=int(match["w"]),
        scene=int(match["scene"]),
        speaker=match["speaker"],
        listener=match["none"] is not None,
    )


def clip_stem(ytid: str, height: int, width: int, scene: int, speaker: str, listener: bool) -> str:
    """The release's clip name for these parts (inverse of `parse_clip_name`)."""
    suffix = "_None" if listener else ""
    return f"{ytid}{SEPARATOR}{height}x{width}_{scene:03d}_{speaker}{suffix}"


def stem_of(name: str) -> str:
    """`dir/x.json` -> `x`: the clip name inside a path or file name as list files write it."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    for ext in (".json", ".mp4", ".wav"):
        if base.endswith(ext):
            return base[: -len(ext)]
    return base
