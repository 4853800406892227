"""`load_speakervid(root)`: the SpeakerVid-5M release, as downloaded, to a `Manifest`.

    root/merged_anno/tar_batch_*.tar.gz   one `{ytid}_full_video_{H}x{W}_{scene:03d}_{speaker}.json`
                                          per clip (or the same files extracted)
    root/raw_labels/<kind>/tar_batch_*    per-clip quality scores, joined by clip name
    root/SFT_set.json, root/testset.json  the SFT subset; VidChatBench's test pairs
    video_dir/{ytid}/{stem}.mp4 + .wav    clips cut by `python -m vidchat.data.speakervid cut`

Rules (tests/data/test_speakervid.py):
- the clip id is the file stem; the conversation is the source (`ytid`); the identity is the
  source and speaker letter (`{ytid}_A`, `{ytid}_B`; a listener `B_None` is person B);
- the clip's window is `start` + `duration` (the tight window), else the scene
  `start_seconds`..`end_seconds`; `time` (turn order) is the window start in the source;
- a bad JSON, a missing required key, a name that is not a release clip name, or (with
  `check_files`) a missing clip file skips that clip with one warning line naming the file; the
  rest loads and `manifest.meta["skipped"]` counts them;
- the SFT subset is `SFT_set.json` (thresholds then apply to the scores a clip has), else the
  thresholds alone; sources named in `testset.json` form the test split and its pairs are the
  test split's dialogue pairs. `splits.json` ({source: split}), if present, overrides splits.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidchat.data.pairing import pair_turns
from vidchat.data.records import ClipRecord, Manifest, TurnPair, hashed_split, resolve_path
from vidchat.data.speakervid.archive import BrokenArchive, iter_members
from vidchat.data.speakervid.lists import (
    DEFAULT_SCORE_KEYS,
    TestSet,
    clip_names_in,
    parse_testset,
    read_raw_scores,
    scores_from,
)
from vidchat.data.speakervid.names import ClipName, parse_clip_name
from vidchat.errors import ConfigError, VidchatError

log = logging.getLogger("vidchat")
MAX_WARNINGS = 20  # skipped-clip lines printed before only counting
CUT_PATTERNS = ("{ytid}/{stem}.mp4", "{ytid}/{stem}.wav")
SOURCE_PATTERNS = ("{ytid}.mp4", None)


@dataclass(frozen=True)
class ReleaseOptions:
    """Where the media are and how pairs are made. Patterns take `{ytid}` and `{stem}`."""

    video_dir: str | None = None  # default root/videos
    video_pattern: str | None = None  # default: CUT_PATTERNS[0], or SOURCE_PATTERNS[0] uncut
    audio_pattern: str | None = None  # a separate wav; "" = the audio is in the video file
    cut: bool = True  # False: read each clip's window and bbox crop from its source video
    check_files: bool = True  # skip clips whose media files are missing
    score_keys: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SCORE_KEYS))
    val_fraction: float = 0.01
    history_turns: int = 2
    history_seconds: float = 60.0
    max_gap_seconds: float | None = 10.0

    def __post_init__(self) -> None:
        fill = {"ytid": "x", "stem": "x", "clip": "x", "source": "x"}
        for key in ("video_pattern", "audio_pattern"):
            pattern = getattr(self, key)
            try:
                (pattern or "").format(**fill)
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"data.{key} {pattern!r}: only {{ytid}} and {{stem}} can be filled in ({exc})"
                ) from None


class Skips:
    """Skipped clips: one warning line each (the first MAX_WARNINGS), counted by reason."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] += 1
        if sum(self.counts.values()) <= MAX_WARNINGS:
            log.warning("skipped %s", message)

    def summary(self, loaded: int) -> None:
        if self.counts:
            parts = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.counts.items()))
            log.warning(
                "speakervid: loaded %d clips, skipped %d (%s)",
                loaded,
                sum(self.counts.values()),
                parts,
            )


def _window(anno: Mapping[str, Any]) -> tuple[float, float]:
    """(start, duration) in seconds of the source: the tight window, else the scene."""
    if "start" in anno and "duration" in anno:
        start, duration = float(anno["start"]), float(anno["duration"])
    else:
        start = float(anno["start_seconds"])
        duration = float(anno["end_seconds"]) - start
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    return start, duration


def _labels(name: ClipName, anno: Mapping[str, Any], duration: float) -> dict[str, Any]:
    labels: dict[str, Any] = {
        "ytid": name.ytid,
        "scene": name.scene,
        "speaker_tag": name.speaker,
        "listener": name.listener,
        "source": str(anno.get("video_name", name.ytid)),
        "speaker": anno.get("speaker"),
        "duration": duration,
        "num_frames": anno.get("num_frames"),
        "sync_conf": anno.get("conf"),
        "clip_size": [anno["clip_video_height"], anno["clip_video_width"]]
        if isinstance(anno.get("clip_video_height"), int)
        and isinstance(anno.get("clip_video_width"), int)
        else None,
    }
    if isinstance(anno.get("demo"), Mapping):
        labels.update(anno["demo"])  # the demo world's ground truth (identity, emotion, ...)
    return labels


def record_from_anno(
    name: ClipName, anno: Mapping[str, Any], root: Path, opts: ReleaseOptions
) -> ClipRecord:
    """One per-clip annotation -> ClipRecord (raises KeyError/ValueError/TypeError when bad)."""
    start, duration = _window(anno)
    video_dir = Path(opts.video_dir) if opts.video_dir else root / "videos"
    defaults = CUT_PATTERNS if opts.cut else SOURCE_PATTERNS
    video_pattern = opts.video_pattern or defaults[0]
    audio_pattern = defaults[1] if opts.audio_pattern is None else opts.audio_pattern
    fill = {"ytid": name.ytid, "stem": name.stem, "clip": name.stem, "source": name.ytid}
    bbox = anno.get("bbox")
    bbox = [float(v) for v in bbox] if isinstance(bbox, list | tuple) and len(bbox) == 4 else None
    labels = _labels(name, anno, duration)
    reference = labels.get("reference")
    talking = bool(anno.get("is_talking", not name.listener)) and not name.listener
    return ClipRecord(
        clip_id=name.stem,
        path=str(video_dir / video_pattern.format(**fill)),
        audio_path=str(video_dir / audio_pattern.format(**fill)) if audio_pattern else None,
        branch="single" if talking else "listening",
        speaker_id=str(labels.get("identity") or name.identity),
        start=0.0 if opts.cut else start,
        duration=None if opts.cut else duration,
        bbox=None if opts.cut else bbox,
        is_talking=talking,
        scores=scores_from("", anno, opts.score_keys),  # raw_labels scores join later
        labels=labels,
        conversation=str(labels.get("conversation") or name.ytid),
        time=start,
        reference=resolve_path(reference, root) if reference else None,
    )


def _read_list(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VidchatError(f"{path}: not a readable JSON file ({exc})") from exc


class _Files:
    """Which media files exist, one directory listing per folder (fast on network disks)."""

    def __init__(self) -> None:
        self._listing: dict[str, set[str]] = {}

    def exists(self, path: str) -> bool:
        folder, name = os.path.split(path)
        if folder not in self._listing:
            try:
                self._listing[folder] = set(os.listdir(folder))
            except OSError:
                self._listing[folder] = set()
        return name in self._listing[folder]


def read_records(root: Path, opts: ReleaseOptions, skips: Skips) -> list[ClipRecord]:
    """Every loadable clip of `merged_anno/`, in clip-name order."""
    anno_dir = root / "merged_anno"
    if not anno_dir.is_dir():
        raise VidchatError(f"{anno_dir}: annotation folder not found (merged_anno/ of the release)")
    broken: list[BrokenArchive] = []
    files, records = _Files(), []
    for member in iter_members(anno_dir, broken):
        name = parse_clip_name(member.stem)
        if name is None:
            skips.add(
                "bad name",
                f"{member.where}: not a clip name "
                "{ytid}_full_video_{H}x{W}_{scene}_{speaker}",
            )
            continue
        try:
            anno = json.loads(member.data)
            if not isinstance(anno, Mapping):
                raise TypeError(f"expected a JSON object, got {type(anno).__name__}")
            record = record_from_anno(name, anno, root, opts)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            skips.add("bad JSON", f"{member.where}: not valid JSON ({exc})")
            continue
        except KeyError as exc:
            skips.add(
                "missing key",
                f"{member.where}: missing required key {exc} "
                "(needs start + duration, or start_seconds + end_seconds)",
            )
            continue
        except (TypeError, ValueError) as exc:
            skips.add("bad value", f"{member.where}: bad value ({exc})")
            continue
        media = [record.path] + ([record.audio_path] if record.audio_path else [])
        missing = [m for m in media if opts.check_files and not files.exists(m)]
        if missing:
            skips.add("missing clip", f"{member.where}: media file not found: {missing[0]}")
            continue
        records.append(record)
    for archive in broken:
        skips.add("broken archive", f"{archive.where}: unreadable archive ({archive.reason})")
    return records


def load_speakervid(
    root: str | Path,
    options: ReleaseOptions | None = None,
    splits: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Manifest:
    """Read the release at `root` (see the module docstring). `overrides` are `ReleaseOptions`
    fields; `splits` ({source: split}) replaces the split rules."""
    root = Path(root)
    opts = options or ReleaseOptions(**overrides)
    skips = Skips()
    records = read_records(root, opts, skips)
    if not records:
        counts = ", ".join(f"{k}: {n}" for k, n in sorted(skips.counts.items())) or "no clip files"
        raise VidchatError(f"{root / 'merged_anno'}: no loadable clips ({counts})")
    _join_scores(root, records, opts, skips)
    sft_path = root / "SFT_set.json"
    if sft_path.exists():
        sft = clip_names_in(_read_list(sft_path))
        for record in records:
            record.labels["sft_set"] = record.clip_id in sft
    test_path = root / "testset.json"
    testset = parse_testset(_read_list(test_path)) if test_path.exists() else TestSet()
    split_of = _splits(root, records, testset, opts.val_fraction, splits)
    pairs = pair_turns(records, opts.history_turns, opts.history_seconds, opts.max_gap_seconds)
    pairs = _bench_pairs(pairs, records, testset, split_of)
    skips.summary(len(records))
    return Manifest(records, pairs, split_of, root, meta={"skipped": dict(skips.counts)})


def _join_scores(root: Path, records: list[ClipRecord], opts: ReleaseOptions, skips: Skips) -> None:
    broken: list[BrokenArchive] = []
    bad: list[str] = []
    by_id = {r.clip_id: r for r in records}
    raw = read_raw_scores(root / "raw_labels", opts.score_keys, by_id, broken, bad)
    for stem, scores in raw.items():
        by_id[stem].scores.update(scores)
    for message in bad:
        skips.add("bad score file", message)
    for archive in broken:
        skips.add("broken archive", f"{archive.where}: unreadable archive ({archive.reason})")


def _splits(
    root: Path,
    records: list[ClipRecord],
    testset: TestSet,
    val_fraction: float,
    splits: Mapping[str, str] | None,
) -> dict[str, str]:
    if splits is None and (root / "splits.json").exists():
        splits = _read_list(root / "splits.json")
    if splits is not None:
        return {r.conversation: str(splits.get(r.conversation, "train")) for r in records}
    test_sources = testset.sources
    return {
        r.conversation: "test"
        if r.conversation in test_sources
        else hashed_split(r.conversation, val_fraction)
        for r in records
    }


def _bench_pairs(
    pairs: list[TurnPair], records: list[ClipRecord], testset: TestSet, split_of: dict[str, str]
) -> list[TurnPair]:
    """When `testset.json` lists pairs, the test split's dialogue pairs are exactly those."""
    if not testset.pairs:
        return pairs
    by_id = {r.clip_id: r for r in records}
    made = {
        (p.partner.clip_id, p.responder.clip_id): p
        for p in pairs
        if p.branch == "dialogue" and p.responder is not None
    }
    bench = []
    for partner, responder in testset.pairs:
        if partner in by_id and responder in by_id and partner != responder:
            pair = made.get((partner, responder)) or TurnPair(
                f"dialogue__{partner}__{responder}",
                "dialogue",
                by_id[partner],
                by_id[responder],
                reference=by_id[responder].reference,
            )
            pair.labels["vidchatbench"] = True
            bench.append(pair)
    kept = [
        p for p in pairs if not (p.branch == "dialogue" and split_of.get(p.conversation) == "test")
    ]
    return kept + bench
