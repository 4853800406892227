"""Plan the release from the stage results, apply the run-wide filters, write the layout.

Output (what `data=speakervid data.root=OUTPUT` reads with no conversion):

    merged_anno/{stem}.json         one annotation per clip (the release's keys)
    raw_labels/curate/{stem}.json   luminance, clarity, face_sharpness, sync, conf (+ asr_conf,
                                    no_speech with ASR)
    videos/{ytid}/{stem}.mp4, .wav  cut clips (video only + 16 kHz wav, as the official cut)
    all_data_list.json, SFT_set.json, curate_report.json

The filter report counts, per filter, the clips (or shots, or sources) kept and dropped, with
each dropped one's name and reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vidchat.curate.clips import ClipOptions, plan_clips
from vidchat.curate.quality import QualityOptions, clarity_floor
from vidchat.curate.store import STAGES, StageStore
from vidchat.data.speakervid.cut import CLIP_FPS, CutJob
from vidchat.utils.atomic import atomic_write_json


@dataclass
class Plan:
    clips: dict[str, list[dict]] = field(default_factory=dict)  # ytid -> kept clips
    report: dict = field(default_factory=dict)


def _filter(report: dict, name: str) -> dict:
    return report["filters"].setdefault(name, {"kept": 0, "dropped": 0, "dropped_items": []})


def _drop(report: dict, name: str, item: str, reason: str) -> None:
    entry = _filter(report, name)
    entry["dropped"] += 1
    entry["dropped_items"].append({"item": item, "reason": reason})


def plan_release(
    store: StageStore, ytids: list[str], clip_opts: ClipOptions, quality: QualityOptions
) -> Plan:
    """Clips of every good source, after the shot, binding, clarity and face-blur filters."""
    plan = Plan(report={"sources": {"total": len(ytids), "ok": 0, "bad": []}, "filters": {}})
    candidates: list[tuple[str, dict]] = []
    for ytid in ytids:
        error = store.error(ytid)
        if error is None and not all(store.has(s, ytid) for s in STAGES):
            error = "not analysed (its run stopped early: rerun to finish it)"
        if error is not None:
            plan.report["sources"]["bad"].append({"source": ytid, "reason": error})
            continue
        plan.report["sources"]["ok"] += 1
        shots, speech, people = (store.load(s, ytid) for s in ("shots", "speech", "people"))
        for name, dropped in (
            ("shot length", shots["dropped_shots"]),
            ("shot luminance and faces", people["dropped_shots"]),
        ):
            for d in dropped:
                _drop(plan.report, name, f"{ytid} frames {d['start']}-{d['end']}", d["reason"])
        _filter(plan.report, "shot length")["kept"] += len(shots["shots"])
        _filter(plan.report, "shot luminance and faces")["kept"] += len(people["shots"])
        source = {**shots["source"], "ytid": ytid}
        unused: list[dict] = []  # every piece of speech that makes no clip, with its reason
        planned = plan_clips(source, people["shots"], speech["turns"], clip_opts, unused)
        _filter(plan.report, "speech turns")["kept"] += sum(not c["listener"] for c in planned)
        for drop in unused:
            _drop(plan.report, "speech turns", drop["item"], drop["reason"])
        for clip in planned:
            shot = next(s for s in people["shots"] if s["index"] == clip["shot"])
            face = shot["faces"][clip["face"]]  # the face track the clip is cropped to
            clip["scores"] = {
                "luminance": shot["luminance"],
                "clarity": source["clarity"],
                "face_sharpness": face["sharpness"],
                "sync": clip["sync"],
                "conf": clip["conf"],
                **_asr_of(clip, speech["turns"]),
                **{k: face[k] for k in ("dover", "hand_sharpness") if k in face},
            }
            clip["source"] = source
            candidates.append((ytid, clip))
    floor = clarity_floor([c["scores"]["clarity"] for _, c in candidates], quality.drop_share)
    for ytid, clip in candidates:
        if _passes(plan.report, clip, floor, quality):
            plan.clips.setdefault(ytid, []).append(clip)
    return plan


def _asr_of(clip: dict, turns: list[dict]) -> dict:
    """Duration-weighted ASR scores of the turns under the clip's window (when ASR ran)."""
    lo, hi = clip["start"], clip["start"] + clip["duration"]
    parts = [(min(t["end"], hi) - max(t["start"], lo), t) for t in turns if "asr_conf" in t]
    parts = [(w, t) for w, t in parts if w > 0]
    if not parts:
        return {}
    total = sum(w for w, _ in parts)
    return {k: round(sum(w * t[k] for w, t in parts) / total, 4) for k in ("asr_conf", "no_speech")}


def _passes(report: dict, clip: dict, floor: float, quality: QualityOptions) -> bool:
    scores = clip["scores"]
    if scores["clarity"] < floor:
        _drop(
            report,
            "clarity",
            clip["stem"],
            f"clarity {scores['clarity']:.1f} in the worst "
            f"{quality.drop_share:.0%} (below {floor:.1f})",
        )
        return False
    _filter(report, "clarity")["kept"] += 1
    no_speech = scores.get("no_speech")
    if no_speech is not None and not clip["listener"] and no_speech >= quality.max_no_speech:
        _drop(report, "ASR no speech", clip["stem"], f"no words in {no_speech:.0%} of the clip")
        return False
    if no_speech is not None:
        _filter(report, "ASR no speech")["kept"] += 1
    floors = (
        ("face blur", "face_sharpness", quality.min_face_sharpness, "face sharpness {:.0f}"),
        ("hand blur", "hand_sharpness", quality.min_hand_sharpness, "hand sharpness {:.0f}"),
        ("DOVER", "dover", quality.min_dover, "DOVER {:.2f}"),
    )
    return all(
        _judge(report, clip, name, key, floor, f"{shown} below {{:g}}")
        for name, key, floor, shown in floors
    )


def _judge(report: dict, clip: dict, name: str, key: str, floor: float, why: str) -> bool:
    """Filter `name`: the clip's score `key` must reach `floor` (`why` formats the drop reason
    from the score and the floor); a clip without that score (a network not given) passes
    unjudged."""
    value = clip["scores"].get(key)
    if value is None:
        return True
    if value < floor:
        _drop(report, name, clip["stem"], why.format(value, floor))
        return False
    _filter(report, name)["kept"] += 1
    return True


def is_sft(clip: dict, quality: QualityOptions) -> bool:
    """SFT membership: face (and hands, when scored) sharp enough, DOVER high enough (when
    scored), and (talking clips) a voice clearly bound to the face."""
    scores = clip["scores"]
    bars = (
        ("face_sharpness", quality.sft_min_face_sharpness),
        ("dover", quality.sft_min_dover),
        ("hand_sharpness", quality.sft_min_hand_sharpness),
    )
    sharp = all(scores.get(key, bar) >= bar for key, bar in bars)  # an unscored network passes
    return sharp and (clip["listener"] or scores["sync"] >= quality.sft_min_sync)


def cut_jobs(plan: Plan, sources: dict[str, Path], output: Path) -> dict[str, list[CutJob]]:
    """One cut job per kept clip, grouped by source."""
    jobs = {}
    for ytid, clips in plan.clips.items():
        folder = output / "videos" / ytid
        jobs[ytid] = [
            CutJob(
                stem=c["stem"],
                source=str(sources[ytid]),
                start=c["start"],
                duration=c["duration"],
                bbox=c["bbox"],
                size=(c["size"], c["size"]),
                video=str(folder / f"{c['stem']}.mp4"),
                audio=str(folder / f"{c['stem']}.wav"),
            )
            for c in clips
        ]
    return jobs


def annotation(clip: dict) -> dict:
    """The clip's per-clip JSON with the release's keys."""
    src = clip["source"]
    h, w = int(src["height"]), int(src["width"])
    return {
        "video_name": f"{src['ytid']}_full_video_{h}x{w}",
        "num_frames": round(clip["duration"] * CLIP_FPS),
        "is_talking": not clip["listener"],
        "clip_speaker_num": 2,
        "video_total_duration": round(src["duration"], 3),
        "start": clip["start"],
        "duration": clip["duration"],
        "start_seconds": clip["shot_window"][0],
        "end_seconds": clip["shot_window"][1],
        "bbox": clip["bbox"],
        "speaker": [clip["speaker"]],
        "raw_video_height": h,
        "raw_video_width": w,
        "clip_video_height": clip["size"],
        "clip_video_width": clip["size"],
    }


def write_release(plan: Plan, output: Path, quality: QualityOptions) -> list[str]:
    """Write annotations, scores and lists (atomically; stale clips of a re-planned source are
    removed) -> the clip names."""
    stems = [c["stem"] for clips in plan.clips.values() for c in clips]
    keep = set(stems)
    for folder in ("merged_anno", "raw_labels/curate"):
        for stale in (output / folder).glob("*.json"):
            if stale.stem not in keep:
                stale.unlink()
    for stale in (output / "videos").glob("*/*"):
        if stale.suffix in (".mp4", ".wav") and stale.stem not in keep:
            stale.unlink()
    for clips in plan.clips.values():
        for clip in clips:
            atomic_write_json(output / "merged_anno" / f"{clip['stem']}.json", annotation(clip))
            atomic_write_json(
                output / "raw_labels" / "curate" / f"{clip['stem']}.json", clip["scores"]
            )
    sft = [c["stem"] for clips in plan.clips.values() for c in clips if is_sft(c, quality)]
    atomic_write_json(output / "all_data_list.json", stems)
    atomic_write_json(output / "SFT_set.json", sft)
    return stems
