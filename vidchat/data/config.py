"""`DataConfig`: the typed `data` config (configs/data/*.yaml), made at the entry point.

One dataclass for every source: the keys all sources share, then, in one form for every
source, the settings a source registers as its own (`register_source(kind, options=[...])`),
which the YAML writes at the data config's top level and `DataConfig.options` keeps: `manifest`
for folders; `video_dir`, `video_pattern`, `audio_pattern`, `cut`, `check_files`, `score_keys`
for the SpeakerVid-5M release; the demo world's generator settings. A key that no source
registered, or that belongs to another source, is one error naming the known keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from vidchat.data.records import BRANCHES
from vidchat.data.sources.registry import SOURCE_OPTIONS, SOURCES
from vidchat.errors import ConfigError
from vidchat.utils.config import to_plain
from vidchat.utils.typed import check, from_node

SUBSETS = ("all", "sft", "pretrain")


@dataclass(frozen=True)
class VideoRead:
    """How the model side reads video: frames per second and square frame size in pixels."""

    fps: float = 8.0
    size: int = 32

    def __post_init__(self) -> None:
        check("data.video.fps", self.fps > 0, "positive", self.fps)
        check("data.video.size", self.size >= 8, ">= 8", self.size)

    def check_tokenizer(self, spec: dict[str, Any], what: str) -> None:
        """Tokenize and the LM stages see the clips at the video tokenizer's frame size and rate
        (`spec`: its `TokenizerSpec` as a dict, from `what`); a `data.video` that says otherwise
        would be silently ignored, so it is a `ConfigError`."""
        size = spec.get("frame_size")
        fps = float(spec["frame_rate"]) * int(spec.get("temporal_stride") or 1)
        if size and tuple(size) != (self.size, self.size):
            raise ConfigError(
                f"data.video.size={self.size} but the video tokenizer ({what}) reads "
                f"{size[0]}x{size[1]} frames; set data.video.size={size[0]}, or "
                "train a video tokenizer at this size"
            )
        if abs(fps - self.fps) > 1e-6:
            raise ConfigError(
                f"data.video.fps={self.fps:g} but the video tokenizer ({what}) reads "
                f"{fps:g} frames/s; set data.video.fps={fps:g}"
            )


@dataclass(frozen=True)
class AudioRead:
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        check("data.audio.sample_rate", self.sample_rate >= 1000, ">= 1000", self.sample_rate)


@dataclass(frozen=True)
class PairsConfig:
    """`data.pairs`: which branches pairing makes, and how much history a multi-turn pair has."""

    branches: tuple[str, ...] = ("dialogue", "listening", "multi_turn")
    history_turns: int = 2
    history_seconds: float = 60.0
    max_gap_seconds: float | None = None
    """dialogue: the longest silence between a partner turn and the answer (None: any)."""

    def __post_init__(self) -> None:
        bad = sorted(set(self.branches) - set(BRANCHES))
        check("data.pairs.branches", not bad, f"some of {list(BRANCHES)}", list(self.branches))
        check("data.pairs.history_turns", self.history_turns >= 0, ">= 0", self.history_turns)
        check("data.pairs.history_seconds", self.history_seconds >= 0, ">= 0", self.history_seconds)
        gap = self.max_gap_seconds
        check("data.pairs.max_gap_seconds", gap is None or gap >= 0, ">= 0 or null", gap)


@dataclass(frozen=True)
class DataConfig:
    kind: str
    root: str
    name: str = ""
    tokens_dir: str | None = None
    video: VideoRead = field(default_factory=VideoRead)
    audio: AudioRead = field(default_factory=AudioRead)
    subset: str = "all"
    thresholds: dict | None = None
    """SFT quality thresholds; None = the paper's (`vidchat.data.pairing.SFT_THRESHOLDS`)."""
    pairs: PairsConfig = field(default_factory=PairsConfig)
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    options: dict = field(default_factory=dict)
    """Settings only this source reads (the keys it registered with `register_source`: a
    folder's `manifest`, the SpeakerVid-5M release's `video_dir`, `cut`, `score_keys`, ..., the
    demo world's generator settings), gathered from the top level of the data config; the
    source types and checks them."""
    generate_world: bool = False
    """Generate the demo world into a `root` outside `cache_dir` (a folder of your choosing);
    under the data cache it is generated on first use without asking."""
    cache_dir: str | None = None
    """The data cache (`${paths.data_dir}`), where a demo world may be generated unasked."""

    def __post_init__(self) -> None:
        check("data.kind", self.kind in SOURCES, f"one of {sorted(SOURCES)}", self.kind)
        check("data.subset", self.subset in SUBSETS, f"one of {list(SUBSETS)}", self.subset)
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            check(f"data.{key}", 0 <= value < 1, "in [0, 1)", value)

    @classmethod
    def from_cfg(cls, node: Any) -> DataConfig:
        """From the `data` node. The keys the source registered as its own (for the demo world:
        seed, num_identities, ...) move from the top level into `options`."""
        if isinstance(node, DataConfig):
            return node
        data = dict(to_plain(node) or {})
        own = {f.name for f in fields(cls)}
        extra = {k: data[k] for k in SOURCE_OPTIONS.get(data.get("kind"), ()) if k in data}
        for k in set(extra) - own:
            data.pop(k)
        data["options"] = {**extra, **dict(data.get("options") or {})}
        check(
            "data.root", bool(data.get("root")), "set (data.root=/path/to/data)", data.get("root")
        )
        return from_node(cls, data, "data")

    @property
    def display_name(self) -> str:
        return self.name or self.kind
