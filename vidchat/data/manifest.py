"""Manifests: load clip records (demo world, folder + JSONL, SpeakerVid-5M layout), pair them
into turns, choose the SFT/pretrain subset, split by conversation.

SpeakerVid-5M layout (see docs): `merged_anno/{clip}.json` per clip (keys such as `video_name`,
`start`, `duration`, `bbox`, `speaker`, `conf`, `dover`, `clear`, `is_talking`), plus
`SFT_set.json` and `testset.json`. Clip names look like
`{ytid}_{W}x{H}_full_video_{scene:03d}_{speakerId}_{person:02d}`; a speaker id `None` marks a
listener. Unknown keys are ignored; missing optional keys take defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidchat.data.records import BRANCHES, ClipRecord, TurnPair, resolve_path
from vidchat.errors import ConfigError, VidchatError
from vidchat.utils.atomic import atomic_write_text

SPLITS = ("train", "val", "test")
SFT_THRESHOLDS: dict[str, float] = {
    "hand_blur": 0.5,
    "face_blur": 0.7,
    "dover": 0.6,
    "motion": 2.0,
    "asr_conf": -1.0,
}
SCORE_KEYS = ("hand_blur", "face_blur", "dover", "motion", "asr_conf", "clear", "conf")
REQUIRED_ANNO_KEYS = ("video_name", "duration")
_CLIP_NAME = re.compile(
    r"^(?P<source>.+)_(?P<w>\d+)x(?P<h>\d+)_full_video_(?P<scene>\d+)_(?P<speaker>[^_]+)_(?P<person>\d+)$"
)


@dataclass
class Manifest:
    """All records, the pairs made from them, and which split each conversation belongs to."""

    records: list[ClipRecord]
    pairs: list[TurnPair]
    split_of: dict[str, str]  # conversation -> "train" | "val" | "test"
    root: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def records_for(self, split: str, talking_only: bool = False) -> list[ClipRecord]:
        _check_split(split)
        return [
            r
            for r in self.records
            if self.split_of.get(r.conversation) == split and (r.is_talking or not talking_only)
        ]

    def pairs_for(self, split: str, branches: Iterable[str] | None = None) -> list[TurnPair]:
        _check_split(split)
        pairs = [p for p in self.pairs if self.split_of.get(p.conversation) == split]
        return filter_branches(pairs, branches) if branches is not None else pairs

    @property
    def splits(self) -> dict[str, list[str]]:
        """split -> sorted conversation ids."""
        out: dict[str, list[str]] = {s: [] for s in SPLITS}
        for conversation, split in sorted(self.split_of.items()):
            out[split].append(conversation)
        return out


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {SPLITS}")


# ----------------------------------------------------------------------------- subsets, branches


def is_sft(record: ClipRecord, thresholds: Mapping[str, float] | None = None) -> bool:
    """SFT quality: listed in the release's SFT set, or every score above its threshold (a
    missing score fails)."""
    if record.labels.get("sft_set"):
        return True
    thresholds = SFT_THRESHOLDS if thresholds is None else thresholds
    return all(
        key in record.scores and float(record.scores[key]) > float(value)
        for key, value in thresholds.items()
    )


def select_subset(
    records: Iterable[ClipRecord], subset: str, thresholds: Mapping[str, float] | None = None
) -> list[ClipRecord]:
    """`"sft"`: records passing the paper's SFT thresholds (hand blur > 0.5, face blur > 0.7,
    DOVER > 0.6, motion > 2, ASR conf > -1); `"pretrain"`: the rest; `"all"`: everything."""
    if subset == "all":
        return list(records)
    if subset not in ("sft", "pretrain"):
        raise ConfigError(f"data.subset must be 'all', 'sft' or 'pretrain', got {subset!r}")
    want = subset == "sft"
    return [r for r in records if is_sft(r, thresholds) == want]


def filter_branches(pairs: Iterable[TurnPair], branches: Iterable[str]) -> list[TurnPair]:
    """Keep pairs of the named branches (`dialogue`, `listening`, `multi_turn`)."""
    wanted = set(branches)
    unknown = wanted - set(BRANCHES)
    if unknown:
        raise ConfigError(f"unknown branch(es) {sorted(unknown)}; expected some of {BRANCHES}")
    return [p for p in pairs if p.branch in wanted]


# ----------------------------------------------------------------------------- pairing


def pair_turns(
    records: Iterable[ClipRecord], history_turns: int = 2, history_seconds: float = 60.0
) -> list[TurnPair]:
    """Make turn pairs within each conversation, in time order.

    - `dialogue`: each talking clip -> the next talking clip by a different speaker.
    - `multi_turn`: the same pair, with up to `history_turns` earlier talking clips that start
      within `history_seconds` before the partner's turn as history (only when there are any).
    - `listening`: a talking clip -> the silent listener clip that overlaps it most in time.
    """
    by_conversation: dict[str, list[ClipRecord]] = defaultdict(list)
    for record in records:
        by_conversation[record.conversation].append(record)
    pairs: list[TurnPair] = []
    for conversation in sorted(by_conversation):
        clips = sorted(by_conversation[conversation], key=lambda r: (r.time, r.clip_id))
        talking = [r for r in clips if r.is_talking]
        for i in range(1, len(talking)):
            partner, responder = talking[i - 1], talking[i]
            if partner.speaker_id == responder.speaker_id:
                continue
            pairs.append(_pair("dialogue", partner, responder, []))
            earlier = (
                [r for r in talking[: i - 1] if r.time >= partner.time - history_seconds][
                    -history_turns:
                ]
                if history_turns > 0
                else []
            )
            if earlier:
                pairs.append(_pair("multi_turn", partner, responder, earlier))
        for listener in (r for r in clips if not r.is_talking):
            best = max(talking, key=lambda r: _overlap(r, listener), default=None)
            if best is not None and _overlap(best, listener) > 0:
                pairs.append(_pair("listening", best, listener, []))
    return pairs


def _span(record: ClipRecord) -> float:
    """Clip length in seconds: the read window, else the annotation's `duration` label."""
    return float(record.duration or record.labels.get("duration") or 0.0)


def _overlap(a: ClipRecord, b: ClipRecord) -> float:
    da, db = _span(a), _span(b)
    return min(a.time + da, b.time + db) - max(a.time, b.time)


def _pair(
    branch: str, partner: ClipRecord, responder: ClipRecord, history: list[ClipRecord]
) -> TurnPair:
    return TurnPair(
        pair_id=f"{branch}__{partner.clip_id}__{responder.clip_id}",  # filename-safe
        branch=branch,
        partner=partner,
        responder=responder,
        history=history,
        reference=responder.reference,
    )


# ----------------------------------------------------------------------------- splits


def hashed_split(conversation: str, val_fraction: float, test_fraction: float = 0.0) -> str:
    """A stable split from the conversation id alone (same answer on every machine)."""
    u = int(hashlib.sha1(conversation.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


# ----------------------------------------------------------------------------- SpeakerVid layout


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


# ----------------------------------------------------------------------------- folder + JSONL


def load_folder(
    root: str | Path,
    manifest: str = "manifest.jsonl",
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    history_turns: int = 2,
    history_seconds: float = 60.0,
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
                _check_split(data["split"])
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
    return Manifest(records, pair_turns(records, history_turns, history_seconds), split_of, root)


# ----------------------------------------------------------------------------- pair JSONL (infer, eval)


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


# ----------------------------------------------------------------------------- entry point


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    try:
        value = cfg.get(key, default)
    except AttributeError:
        value = getattr(cfg, key, default)
    return default if value is None else value


def load_manifest(data_cfg: Any) -> Manifest:
    """`cfg.data` -> Manifest, dispatching on `data.kind` in {demo, folder, speakervid}, then
    applying `data.subset` (all/sft/pretrain, with `data.thresholds`) and `data.pairs.branches`."""
    kind = _get(data_cfg, "kind")
    root = _get(data_cfg, "root")
    if root is None:
        raise ConfigError("data.root is not set")
    pair_cfg = _get(data_cfg, "pairs", {})
    history = {
        "history_turns": int(_get(pair_cfg, "history_turns", 2)),
        "history_seconds": float(_get(pair_cfg, "history_seconds", 60.0)),
    }
    if kind == "demo":
        from vidchat.data.demo_world import ensure_demo_world

        manifest = load_speakervid(ensure_demo_world(root, data_cfg).parent, **history)
    elif kind == "folder":
        manifest = load_folder(
            root,
            manifest=str(_get(data_cfg, "manifest", "manifest.jsonl")),
            val_fraction=float(_get(data_cfg, "val_fraction", 0.05)),
            test_fraction=float(_get(data_cfg, "test_fraction", 0.05)),
            **history,
        )
    elif kind == "speakervid":
        manifest = load_speakervid(
            root,
            video_dir=_get(data_cfg, "video_dir"),
            video_pattern=str(_get(data_cfg, "video_pattern", "{clip}.mp4")),
            cut=bool(_get(data_cfg, "cut", True)),
            val_fraction=float(_get(data_cfg, "val_fraction", 0.05)),
            **history,
        )
    else:
        raise ConfigError(f"data.kind must be 'demo', 'folder' or 'speakervid', got {kind!r}")
    subset = str(_get(data_cfg, "subset", "all"))
    thresholds = _get(data_cfg, "thresholds")
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
    branches = _get(pair_cfg, "branches")
    if branches is not None:
        manifest.pairs = filter_branches(manifest.pairs, list(branches))
    return manifest
