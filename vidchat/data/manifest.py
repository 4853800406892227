"""`load_manifest(cfg.data)`: the one entry from a data config to records and pairs.

Sources (`vidchat.data.sources`: the SpeakerVid-5M release layout, a folder + JSONL, the demo
world) read records; `vidchat.data.pairing` pairs them into turns and picks the subset.
"""

from __future__ import annotations

from typing import Any

from vidchat.data.pairing import select_subset
from vidchat.data.records import Manifest, filter_branches
from vidchat.data.sources.demo import ensure_demo_world
from vidchat.data.sources.folder import load_folder
from vidchat.data.sources.speakervid import load_speakervid
from vidchat.errors import ConfigError
from vidchat.utils.config import get


def load_manifest(data_cfg: Any) -> Manifest:
    """`cfg.data` -> Manifest, dispatching on `data.kind` in {demo, folder, speakervid}, then
    applying `data.subset` (all/sft/pretrain, with `data.thresholds`) and `data.pairs.branches`."""
    kind = get(data_cfg, "kind")
    root = get(data_cfg, "root")
    if root is None:
        raise ConfigError("data.root is not set")
    pair_cfg = get(data_cfg, "pairs", {})
    history = {
        "history_turns": int(get(pair_cfg, "history_turns", 2)),
        "history_seconds": float(get(pair_cfg, "history_seconds", 60.0)),
    }
    if kind == "demo":
        manifest = load_speakervid(ensure_demo_world(root, data_cfg).parent, **history)
    elif kind == "folder":
        manifest = load_folder(
            root,
            manifest=str(get(data_cfg, "manifest", "manifest.jsonl")),
            val_fraction=float(get(data_cfg, "val_fraction", 0.05)),
            test_fraction=float(get(data_cfg, "test_fraction", 0.05)),
            **history,
        )
    elif kind == "speakervid":
        manifest = load_speakervid(
            root,
            video_dir=get(data_cfg, "video_dir"),
            video_pattern=str(get(data_cfg, "video_pattern", "{clip}.mp4")),
            cut=bool(get(data_cfg, "cut", True)),
            val_fraction=float(get(data_cfg, "val_fraction", 0.05)),
            **history,
        )
    else:
        raise ConfigError(f"data.kind must be 'demo', 'folder' or 'speakervid', got {kind!r}")
    subset = str(get(data_cfg, "subset", "all"))
    thresholds = get(data_cfg, "thresholds")
    thresholds = {k: float(v) for k, v in dict(thresholds).items()} if thresholds else None
    if subset != "all":
        kept = select_subset(manifest.records, subset, thresholds)
        keep_ids = {r.clip_id for r in kept}
        manifest.records = kept
        manifest.pairs = [
            p
            for p in manifest.pairs
            if p.partner.clip_id in keep_ids
            and (p.responder is None or p.responder.clip_id in keep_ids)
        ]
    branches = get(pair_cfg, "branches")
    if branches is not None:
        manifest.pairs = filter_branches(manifest.pairs, list(branches))
    return manifest
