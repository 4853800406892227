"""Your own clips: a folder of videos with a JSONL manifest, one `ClipRecord` per line."""

from __future__ import annotations

import json
from pathlib import Path

from vidchat.data.pairing import pair_turns
from vidchat.data.records import ClipRecord, Manifest, check_split, hashed_split
from vidchat.errors import VidchatError


def load_folder(
    root: str | Path,
    manifest: str = "manifest.jsonl",
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    history_turns: int = 2,
    history_seconds: float = 60.0,
    max_gap_seconds: float | None = None,
) -> Manifest:
    """A folder of clips with a JSONL manifest: one ClipRecord per line (keys as in ClipRecord,
    plus optional `split`; unknown keys ignored; paths relative to the folder). Without a
    manifest file, every *.mp4 in the folder is one single-branch clip."""
    root = Path(root)
    if not root.is_dir():
        raise VidchatError(f"{root}: data folder not found")
    path = root / manifest
    records: list[ClipRecord] = []
    explicit: dict[str, str] = {}
    if path.exists():
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                record = ClipRecord.from_dict(data, root)
            except json.JSONDecodeError as exc:
                raise VidchatError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
            except KeyError as exc:
                raise VidchatError(f"{path}:{lineno}: missing required key {exc}") from exc
            except (TypeError, ValueError) as exc:
                raise VidchatError(f"{path}:{lineno}: bad value ({exc})") from exc
            if not record.conversation:
                record.conversation = record.clip_id
            if "split" in data:
                check_split(data["split"])
                explicit[record.conversation] = data["split"]
            records.append(record)
    else:
        for video in sorted(root.glob("*.mp4")):
            records.append(ClipRecord(clip_id=video.stem, path=str(video), conversation=video.stem))
    if not records:
        raise VidchatError(f"{path}: no clips listed (and no *.mp4 in {root})")
    split_of = {
        r.conversation: explicit.get(r.conversation)
        or hashed_split(r.conversation, val_fraction, test_fraction)
        for r in records
    }
    return Manifest(
        records,
        pair_turns(records, history_turns, history_seconds, max_gap_seconds),
        split_of,
        root,
    )
