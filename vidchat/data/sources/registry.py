"""`data.kind` -> the reader of that source's records and pairs: `register_source`.

A new data source is one reader registered under a new kind (and its YAML in `configs/data/`,
over `_base.yaml`), from any module imported before the run; `load_manifest` and `DataConfig`
read this table. Readers take the `DataConfig` (not imported here: the config checks its kind
against this table) and the pairing settings every source passes on (`history_turns`,
`history_seconds`, `max_gap_seconds`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any

from vidchat.data.demo_world.world import DemoWorldConfig
from vidchat.data.records import Manifest
from vidchat.data.sources.demo import ensure_demo_world
from vidchat.data.sources.folder import load_folder
from vidchat.data.speakervid import ReleaseOptions, load_speakervid
from vidchat.data.speakervid.lists import DEFAULT_SCORE_KEYS
from vidchat.utils.typed import from_node

# kind -> reader of a data config's records and pairs (before the subset and branch filters)
SourceReader = Callable[[Any, dict[str, Any]], Manifest]
SOURCES: dict[str, SourceReader] = {}
SOURCE_OPTIONS: dict[str, frozenset[str]] = {}
"""kind -> the keys of a data config that only that source reads (`DataConfig.options`)."""


def register_source(
    kind: str, options: Iterable[str] = ()
) -> Callable[[SourceReader], SourceReader]:
    """Register `reader(data: DataConfig, history: dict) -> Manifest` as `data.kind=<kind>`;
    `options`: keys of its data config that are its own (`DataConfig.from_cfg` gathers them
    into `data.options` for the reader)."""

    def add(reader: SourceReader) -> SourceReader:
        SOURCES[kind] = reader
        SOURCE_OPTIONS[kind] = frozenset(options)
        return reader

    return add


@register_source("demo", options=[f.name for f in fields(DemoWorldConfig)])
def _demo(data: Any, history: dict[str, Any]) -> Manifest:
    """The demo world, generated on first use under the data cache (or when asked)."""
    root = ensure_demo_world(
        data.root, data.options, allowed=data.generate_world, cache_dir=data.cache_dir
    ).parent
    return load_speakervid(root, **history)


@register_source("folder", options=["manifest"])
def _folder(data: Any, history: dict[str, Any]) -> Manifest:
    """A folder of clips with a JSONL manifest (or every mp4 in it as a single clip)."""
    return load_folder(
        data.root,
        manifest=str(data.options.get("manifest", "manifest.jsonl")),
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        **history,
    )


SPEAKERVID_OPTIONS = ("video_dir", "video_pattern", "audio_pattern", "cut", "check_files")


@register_source("speakervid", options=[*SPEAKERVID_OPTIONS, "score_keys"])
def _speakervid(data: Any, history: dict[str, Any]) -> Manifest:
    """The SpeakerVid-5M release layout (cut clips, or windows of the source videos)."""
    own = {k: v for k, v in data.options.items() if k in SPEAKERVID_OPTIONS}
    options = from_node(
        ReleaseOptions, {**own, "val_fraction": data.val_fraction, **history}, "data"
    )
    score_keys = dict(data.options.get("score_keys") or DEFAULT_SCORE_KEYS)
    return load_speakervid(data.root, dataclasses.replace(options, score_keys=score_keys))
