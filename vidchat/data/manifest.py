"""`load_manifest(cfg.data)`: the one entry from a data config to records and pairs.

Sources (`vidchat.data.speakervid`: the SpeakerVid-5M release; `vidchat.data.sources`: a folder +
JSONL, the demo world) read records; `vidchat.data.pairing` pairs them into turns and picks the subset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vidchat.data.config import DataConfig
from vidchat.data.pairing import select_subset
from vidchat.data.records import Manifest, filter_branches
from vidchat.data.sources.demo import ensure_demo_world
from vidchat.data.sources.folder import load_folder
from vidchat.data.speakervid import ReleaseOptions, load_speakervid
from vidchat.data.speakervid.lists import DEFAULT_SCORE_KEYS

# kind -> reader of a data config's records and pairs (before the subset and branch filters)
SourceReader = Callable[[DataConfig, dict[str, Any]], Manifest]
SOURCES: dict[str, SourceReader] = {}


def register_source(kind: str) -> Callable[[SourceReader], SourceReader]:
    """Register `reader(data: DataConfig, history: dict) -> Manifest` as `data.kind=<kind>`. A
    new data source is one reader (and its YAML in `configs/data/`); `history` holds the pairing
    settings every source passes on (`history_turns`, `history_seconds`, `max_gap_seconds`)."""

    def add(reader: SourceReader) -> SourceReader:
        SOURCES[kind] = reader
        return reader

    return add


@register_source("demo")
def _demo(data: DataConfig, history: dict[str, Any]) -> Manifest:
    """The demo world, generated on first use under the data cache (or when asked)."""
    root = ensure_demo_world(data.root, data.generate, allowed=data.generate_world,
                             cache_dir=data.cache_dir).parent  # fmt: skip
    return load_speakervid(root, **history)


@register_source("folder")
def _folder(data: DataConfig, history: dict[str, Any]) -> Manifest:
    """A folder of clips with a JSONL manifest (or every mp4 in it as a single clip)."""
    return load_folder(data.root, manifest=data.manifest, val_fraction=data.val_fraction,
                       test_fraction=data.test_fraction, **history)  # fmt: skip


@register_source("speakervid")
def _speakervid(data: DataConfig, history: dict[str, Any]) -> Manifest:
    """The SpeakerVid-5M release layout (cut clips, or windows of the source videos)."""
    options = ReleaseOptions(video_dir=data.video_dir, video_pattern=data.video_pattern,
                             audio_pattern=data.audio_pattern, cut=data.cut,
                             check_files=data.check_files,
                             score_keys=dict(data.score_keys or DEFAULT_SCORE_KEYS),
                             val_fraction=data.val_fraction, **history)  # fmt: skip
    return load_speakervid(data.root, options)


def load_manifest(data: DataConfig | Any) -> Manifest:
    """`cfg.data` (a `DataConfig`, or the node to make one from) -> Manifest: the source that
    `data.kind` names (`SOURCES`), then `data.subset` (all/sft/pretrain, with
    `data.thresholds`) and `data.pairs.branches`."""
    data = DataConfig.from_cfg(data)
    history = {
        "history_turns": data.pairs.history_turns,
        "history_seconds": data.pairs.history_seconds,
        "max_gap_seconds": data.pairs.max_gap_seconds,
    }
    manifest = SOURCES[data.kind](data, history)
    if data.subset != "all":
        thresholds = {k: float(v) for k, v in data.thresholds.items()} if data.thresholds else None
        kept = select_subset(manifest.records, data.subset, thresholds)
        keep_ids = {r.clip_id for r in kept}
        manifest.records = kept
        manifest.pairs = [
            p
            for p in manifest.pairs
            if p.partner.clip_id in keep_ids
            and (p.responder is None or p.responder.clip_id in keep_ids)
        ]
    manifest.pairs = filter_branches(manifest.pairs, list(data.pairs.branches))
    return manifest
