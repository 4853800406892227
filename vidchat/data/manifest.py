"""`load_manifest(cfg.data)`: the one entry from a data config to records and pairs.

Sources (`vidchat.data.speakervid`: the SpeakerVid-5M release; `vidchat.data.sources`: a folder +
JSONL, the demo world) read records; `vidchat.data.pairing` pairs them into turns and picks the subset.
"""

from __future__ import annotations

from typing import Any

from vidchat.data.config import DataConfig
from vidchat.data.pairing import select_subset
from vidchat.data.records import Manifest, filter_branches
from vidchat.data.sources.registry import SOURCES


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
