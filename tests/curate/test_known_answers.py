"""Curation scored against the raw demo sources' ground truth, and read back as a release."""

from __future__ import annotations

from collections import Counter

from tests.curate.conftest import truths
from vidchat.curate.clips import ClipOptions
from vidchat.curate.quality import QualityOptions
from vidchat.curate.release import plan_release
from vidchat.curate.scoring import (
    binding_accuracy,
    clip_match,
    cut_accuracy,
    diarisation_error_rate,
    truth_clips,
)
from vidchat.curate.shots import ShotOptions
from vidchat.curate.store import StageStore
from vidchat.data.speakervid.loader import load_speakervid


def _plan(root, ytids):
    return plan_release(StageStore(root), ytids, ClipOptions(), QualityOptions())


def test_shots_speakers_and_faces_match_the_truth(curated, raw_sources):
    root, report = curated
    store = StageStore(root)
    known = truths(raw_sources)
    plan = _plan(root, list(known))
    assert report["sources"]["ok"] == len(known) and not report["sources"]["bad"]
    for ytid, truth in known.items():
        assert cut_accuracy(truth["cuts"], store.load("shots", ytid)["cuts"], tolerance=2) >= 0.95
        der = diarisation_error_rate(truth["speech"], store.load("speech", ytid)["turns"])
        assert der < 0.15, (ytid, der)
        assert binding_accuracy(plan.clips[ytid], truth) >= 0.95
        expected = truth_clips(truth, ShotOptions(), ClipOptions())
        assert clip_match(plan.clips[ytid], expected) >= 0.95


def test_the_short_shot_is_dropped_with_its_reason(curated, raw_sources):
    _, report = curated
    dropped = report["filters"]["shot length"]["dropped_items"]
    assert len(dropped) >= len(truths(raw_sources))  # each source has a 2 s shot
    assert all("shorter than min_seconds" in d["reason"] for d in dropped)


def test_the_release_loads_with_the_branches_the_truth_defines(curated, raw_sources):
    root, _ = curated
    known = truths(raw_sources)
    expected = [c for t in known.values() for c in truth_clips(t, ShotOptions(), ClipOptions())]
    manifest = load_speakervid(root)
    assert sorted(r.clip_id for r in manifest.records) == sorted(c["stem"] for c in expected)
    assert not manifest.meta.get("skipped")
    listeners = sum(c["listener"] for c in expected)
    branches = Counter(p.branch for p in manifest.pairs)
    assert branches["listening"] == listeners
    assert branches["dialogue"] == _expected_dialogue(expected) > 0
    identities = {r.speaker_id for r in manifest.records}
    assert identities == {f"{y}_{s}" for y in known for s in "AB"}
    for record in manifest.records:  # every clip is a cut file with its wav
        assert record.path.endswith(".mp4") and record.audio_path.endswith(".wav")


def _expected_dialogue(clips: list[dict], max_gap: float = 10.0) -> int:
    """Dialogue pairs by the release rule: a talking clip, then the other speaker's next
    talking clip of the same source at most `max_gap` s after it ends."""
    count = 0
    by_source: dict[str, list[dict]] = {}
    for c in clips:
        if not c["listener"]:
            by_source.setdefault(c["stem"].split("_full_video_")[0], []).append(c)
    for talking in by_source.values():
        talking.sort(key=lambda c: c["start"])
        for a, b in zip(talking, talking[1:]):
            gap = b["start"] - (a["start"] + a["duration"])
            count += a["speaker"] != b["speaker"] and gap <= max_gap
    return count
