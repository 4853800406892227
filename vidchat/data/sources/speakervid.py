"""The SpeakerVid-5M release layout: `merged_anno/{clip}.json` per clip (keys such as
`video_name`, `start`, `duration`, `bbox`, `speaker`, `conf`, `dover`, `clear`, `is_talking`),
plus `SFT_set.json` and `testset.json`. Clip names look like
`{ytid}_{W}x{H}_full_video_{scene:03d}_{speakerId}_{person:02d}`; a speaker id `None` marks a
listener. Unknown keys are ignored; missing optional keys take defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vidchat.data.pairing import pair_turns
from vidchat.data.records import ClipRecord, Manifest, hashed_split, resolve_path
from vidchat.errors import VidchatError

SCORE_KEYS = ("hand_blur", "face_blur", "dover", "motion", "asr_conf", "clear", "conf")
REQUIRED_ANNO_KEYS = ("video_name", "duration")
_CLIP_NAME = re.compile(
    r"^(?P<source>.+)_(?P<w>\d+)x(?P<h>\d+)_full_video_(?P<scene>\d+)_(?P<speaker>[^_]+)_(?P<person>\d+)$"
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise VidchatError(f"{path}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VidchatError(f"{path}: not valid JSON ({exc})") from exc


def _names_in(obj: Any) -> set[str]:
    """Clip names mentioned in a release list file (list of names, of dicts, or a dict)."""
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, Mapping):
        return set().union(*(_names_in(v) for v in obj.values())) | {
            k for k in obj if isinstance(k, str) and _CLIP_NAME.match(k)
        }
    if isinstance(obj, list | tuple):
        return set().union(*(_names_in(v) for v in obj)) if obj else set()
    return set()


def record_from_anno(
    anno: Mapping[str, Any],
    anno_path: Path,
    video_dir: Path,
    video_pattern: str = "{clip}.mp4",
    cut: bool = True,
    root: Path | None = None,
) -> ClipRecord:
    """One `merged_anno/*.json` dict -> ClipRecord. `cut`: the video files are the clips
    themselves (read from 0); otherwise they are source videos read at [start, start+duration)."""
    if not isinstance(anno, Mapping):
        raise VidchatError(f"{anno_path}: expected a JSON object, got {type(anno).__name__}")
    missing = [k for k in REQUIRED_ANNO_KEYS if k not in anno]
    if missing:
        raise VidchatError(f"{anno_path}: missing required key(s) {missing}")
    name = str(anno["video_name"])
    match = _CLIP_NAME.match(name)
    source = match["source"] if match else str(anno.get("video_id", name))
    scene = int(match["scene"]) if match else 0
    speaker_tag = match["speaker"] if match else str(anno.get("speaker_id", ""))
    person = int(match["person"]) if match else 0
    try:
        duration = float(anno["duration"])
        start = float(anno.get("start", 0.0))
        scene_start = float(anno.get("start_seconds", anno.get("org_start_seconds", 0.0)))
    except (TypeError, ValueError) as exc:
        raise VidchatError(f"{anno_path}: start/duration must be numbers ({exc})") from exc
    is_talking = bool(anno.get("is_talking", speaker_tag != "None"))
    labels: dict[str, Any] = {
        "scene": scene,
        "person": person,
        "speaker_tag": speaker_tag,
        "speaker": anno.get("speaker"),
        "duration": duration,
    }
    demo = anno.get("demo")
    if isinstance(demo, Mapping):
        labels.update(demo)
    reference = labels.get("reference")
    bbox = anno.get("bbox")
    bbox = [float(v) for v in bbox] if isinstance(bbox, list | tuple) and len(bbox) == 4 else None
    return ClipRecord(
        clip_id=name,
        path=str(video_dir / video_pattern.format(clip=name, source=source)),
        branch="single" if is_talking else "listening",
        speaker_id=str(labels.get("identity", f"{source}_{person:02d}")),
        start=0.0 if cut else start,
        duration=None if cut else duration,
        bbox=None if cut else bbox,
        is_talking=is_talking,
        scores={k: float(anno[k]) for k in SCORE_KEYS if isinstance(anno.get(k), int | float)},
        labels=labels,
        conversation=str(labels.get("conversation", source)),
        time=max(start, scene_start),
        reference=resolve_path(reference, root) if reference else None,
    )


def load_speakervid(
    root: str | Path,
    video_dir: str | Path | None = None,
    video_pattern: str = "{clip}.mp4",
    cut: bool = True,
    splits: Mapping[str, str] | None = None,
    val_fraction: float = 0.05,
    history_turns: int = 2,
    history_seconds: float = 60.0,
) -> Manifest:
    """Read a SpeakerVid-5M style release at `root` (clips in `video_dir`, default root/videos)."""
    root = Path(root)
    anno_dir = root / "merged_anno"
    if not anno_dir.is_dir():
        raise VidchatError(f"{anno_dir}: annotation folder not found (expected merged_anno/*.json)")
    video_dir = Path(video_dir) if video_dir else root / "videos"
    records = [
        record_from_anno(_read_json(p), p, video_dir, video_pattern, cut, root)
        for p in sorted(anno_dir.glob("*.json"))
    ]
    if not records:
        raise VidchatError(f"{anno_dir}: no annotation files (*.json)")
    sft_path = root / "SFT_set.json"
    if sft_path.exists():
        sft = _names_in(_read_json(sft_path))
        for record in records:
            record.labels["sft_set"] = record.clip_id in sft
    if splits is None and (root / "splits.json").exists():
        splits = _read_json(root / "splits.json")
    if splits is None:
        test_names = (
            _names_in(_read_json(root / "testset.json"))
            if (root / "testset.json").exists()
            else set()
        )
        test_conversations = {r.conversation for r in records if r.clip_id in test_names}
        splits = {
            r.conversation: "test"
            if r.conversation in test_conversations
            else hashed_split(r.conversation, val_fraction)
            for r in records
        }
    split_of = {r.conversation: str(splits.get(r.conversation, "train")) for r in records}
    pairs = pair_turns(records, history_turns, history_seconds)
    return Manifest(records, pairs, split_of, root)
