"""Pair manifests for inference and evaluation: one JSON pair per line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vidchat.data.records import ClipRecord, TurnPair, resolve_path
from vidchat.errors import VidchatError
from vidchat.utils.atomic import atomic_write_text


def _record_json(record: ClipRecord, base: Path) -> dict[str, Any]:
    data = record.to_dict()
    for key in ("path", "audio_path", "reference"):
        if data.get(key):
            data[key] = os.path.relpath(data[key], base)
    return data


def write_pairs_jsonl(path: str | Path, pairs: Iterable[TurnPair]) -> Path:
    """One pair per line: `{"pair_id", "branch", "partner": {...}, "responder": {...}|null,
    "reference": image path|null, "history": [...], "labels": {...}}`, paths relative to the
    file's folder. Written atomically."""
    path = Path(path)
    base = path.parent.absolute()
    lines = []
    for pair in pairs:
        lines.append(
            json.dumps(
                {
                    "pair_id": pair.pair_id,
                    "branch": pair.branch,
                    "partner": _record_json(pair.partner, base),
                    "responder": _record_json(pair.responder, base) if pair.responder else None,
                    "reference": os.path.relpath(pair.reference, base) if pair.reference else None,
                    "history": [_record_json(r, base) for r in pair.history],
                    "labels": pair.labels,
                }
            )
        )
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_pairs_jsonl(path: str | Path) -> list[TurnPair]:
    """Inverse of `write_pairs_jsonl`. A clip may also be given as a bare path string, e.g.
    `{"partner": "in/clip.mp4", "reference": "me.png"}` for inference."""
    path = Path(path)
    if not path.exists():
        raise VidchatError(f"{path}: pair manifest not found")
    base = path.parent.absolute()
    pairs = []

    def clip(value: Any, lineno: int, key: str) -> ClipRecord:
        try:
            data = {"path": value} if isinstance(value, str) else dict(value)
            return ClipRecord.from_dict(data, base)
        except KeyError as exc:
            raise VidchatError(f"{path}:{lineno}: {key} is missing required key {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise VidchatError(f"{path}:{lineno}: bad {key} ({exc})") from exc

    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise VidchatError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or "partner" not in data:
            raise VidchatError(f"{path}:{lineno}: each line needs a 'partner' clip")
        partner = clip(data["partner"], lineno, "partner")
        responder = clip(data["responder"], lineno, "responder") if data.get("responder") else None
        reference = data.get("reference") or (responder.reference if responder else None)
        pairs.append(
            TurnPair(
                pair_id=str(data.get("pair_id", f"pair{lineno:05d}")),
                branch=str(data.get("branch", "dialogue")),
                partner=partner,
                responder=responder,
                history=[clip(h, lineno, "history") for h in data.get("history", [])],
                reference=resolve_path(reference, base) if reference else None,
                labels=dict(data.get("labels", {})),
            )
        )
    return pairs
