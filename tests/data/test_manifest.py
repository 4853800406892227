"""Manifest loaders (SpeakerVid layout, folder JSONL, demo), pairing, subsets, pair JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.release_sample import GOOD, anno, write_release
from vidchat.data.manifest import load_manifest
from vidchat.data.pairing import pair_turns, select_subset
from vidchat.data.pairs_jsonl import read_pairs_jsonl, write_pairs_jsonl
from vidchat.data.records import ClipRecord, filter_branches
from vidchat.data.sources.folder import load_folder
from vidchat.data.speakervid import clip_stem, load_speakervid
from vidchat.errors import ConfigError, VidchatError


def _names(src: str) -> dict[str, str]:
    return {
        k: clip_stem(src, 1080, 1920, scene, who, who_none)
        for k, scene, who, who_none in (
            ("a0", 1, "A", False),
            ("b1", 2, "B", False),
            ("l0", 2, "A", True),
            ("a2", 3, "A", False),
        )
    }


@pytest.fixture
def release(tmp_path) -> Path:
    x, y = _names("yt_ab-c"), _names("zz9")
    annos = {
        x["a0"]: anno(x["a0"], 0.0, 3.0),
        x["b1"]: anno(x["b1"], 3.0, 4.0),
        x["l0"]: anno(x["l0"], 3.0, 4.0),
        x["a2"]: anno(x["a2"], 7.0, 5.0),
        y["a0"]: anno(y["a0"], 0.0, 3.0),
        y["b1"]: anno(y["b1"], 3.5, 3.0),
    }
    scores = {x["a0"]: GOOD, x["b1"]: GOOD, x["a2"]: GOOD, y["a0"]: {**GOOD, "dover": 0.2}}
    return write_release(
        tmp_path / "release",
        annos,
        scores,
        sft=[x["a0"], x["b1"], y["a0"]],
        testset=[[y["a0"], y["b1"]]],
    )


def test_select_subset_thresholds_and_sft_list(release):
    records = load_speakervid(release).records
    sft = {r.clip_id[-5:] for r in select_subset(records, "sft") if r.conversation == "yt_ab-c"}
    # a0 and b1 are listed in SFT_set.json and pass; a2 passes but is not listed
    assert sft == {"001_A", "002_B"}
    pretrain = select_subset(records, "pretrain")
    assert len(pretrain) + len(select_subset(records, "sft")) == len(records)
    assert not {r.clip_id for r in pretrain} & {r.clip_id for r in select_subset(records, "sft")}
    bare = [ClipRecord("c", "c.mp4", scores=dict(GOOD))]
    assert select_subset(bare, "sft") == bare
    thresholds = {"hand_blur": 0.5, "face_blur": 0.7, "dover": 0.6, "motion": 2, "asr_conf": -1}
    for key, value in thresholds.items():  # each threshold is strict, and a missing score fails
        at_threshold = ClipRecord("c", "c.mp4", scores={**GOOD, key: value})
        assert select_subset([at_threshold], "sft") == []
        assert select_subset([at_threshold], "pretrain") == [at_threshold]
        missing = ClipRecord("c", "c.mp4", scores={k: v for k, v in GOOD.items() if k != key})
        assert select_subset([missing], "sft") == []
    with pytest.raises(ConfigError, match="subset"):
        select_subset(records, "best")


def test_pair_turns_orders_by_time_and_windows_history():
    def rec(i: int, speaker: str, t: float) -> ClipRecord:
        return ClipRecord(
            f"c{i}", f"c{i}.mp4", speaker_id=speaker, conversation="v", time=t, duration=2.0
        )

    records = [
        rec(3, "b", 30.0),
        rec(0, "a", 0.0),
        rec(2, "a", 20.0),
        rec(1, "b", 10.0),
        rec(4, "b", 40.0),
    ]
    pairs = pair_turns(records, history_turns=2, history_seconds=15.0)
    dialogue = [(p.partner.clip_id, p.responder.clip_id) for p in pairs if p.branch == "dialogue"]
    assert dialogue == [("c0", "c1"), ("c1", "c2"), ("c2", "c3")]  # c3 -> c4: same speaker
    multi = {
        p.responder.clip_id: [h.clip_id for h in p.history]
        for p in pairs
        if p.branch == "multi_turn"
    }
    assert multi == {"c2": ["c0"], "c3": ["c1"]}  # c0 is more than 15 s before c2's partner
    assert filter_branches(pairs, ["multi_turn"]) == [p for p in pairs if p.branch == "multi_turn"]
    with pytest.raises(ConfigError, match="branch"):
        filter_branches(pairs, ["monologue"])


def test_folder_jsonl_manifest(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    lines = [
        {
            "path": "x.mp4",
            "conversation": "c",
            "speaker_id": "p",
            "time": 0,
            "split": "val",
            "mood": "?",
        },
        {"path": "y.mp4", "conversation": "c", "speaker_id": "q", "time": 5, "reference": "q.png"},
    ]
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    manifest = load_folder(root)
    assert [r.clip_id for r in manifest.records] == ["x", "y"]
    assert manifest.records[1].reference == str(root / "q.png")
    assert manifest.split_of == {"c": "val"}
    assert [(p.branch, p.partner.clip_id, p.responder.clip_id) for p in manifest.pairs] == [
        ("dialogue", "x", "y")
    ]
    (root / "manifest.jsonl").write_text('{"path": "x.mp4"}\n{"clip_id": "nopath"}\n')
    with pytest.raises(VidchatError, match=r"manifest.jsonl:2: missing required key 'path'"):
        load_folder(root)
    (root / "manifest.jsonl").unlink()
    (root / "a.mp4").write_bytes(b"x")
    assert [r.clip_id for r in load_folder(root).records] == ["a"]


def test_pairs_jsonl_round_trip_and_bare_paths(tmp_path, release):
    pairs = load_speakervid(release).pairs
    path = write_pairs_jsonl(tmp_path / "pairs.jsonl", pairs)
    back = read_pairs_jsonl(path)
    assert [
        (p.pair_id, p.branch, p.partner.path, p.responder.path, [h.path for h in p.history])
        for p in back
    ] == [
        (p.pair_id, p.branch, p.partner.path, p.responder.path, [h.path for h in p.history])
        for p in pairs
    ]
    (tmp_path / "infer.jsonl").write_text('{"partner": "in/p.mp4", "reference": "me.png"}\n')
    (only,) = read_pairs_jsonl(tmp_path / "infer.jsonl")
    assert only.partner.path == str(tmp_path / "in" / "p.mp4") and only.responder is None
    assert only.reference == str(tmp_path / "me.png")
    (tmp_path / "bad.jsonl").write_text('{"responder": "x.mp4"}\n')
    with pytest.raises(VidchatError, match=r"bad.jsonl:1: .*partner"):
        read_pairs_jsonl(tmp_path / "bad.jsonl")


def test_load_manifest_dispatch(release, demo_world):
    cfg = OmegaConf.create(
        {
            "kind": "speakervid",
            "root": str(release),
            "subset": "sft",
            "pairs": {"branches": ["dialogue"]},
        }
    )
    manifest = load_manifest(cfg)
    assert manifest.pairs and all(p.branch == "dialogue" for p in manifest.pairs)
    assert all(p.partner.clip_id in {r.clip_id for r in manifest.records} for p in manifest.pairs)
    assert len(demo_world.manifest.pairs_for("train")) > 0
    with pytest.raises(ConfigError, match="data.kind"):
        load_manifest(OmegaConf.create({"kind": "youtube", "root": "x"}))
    with pytest.raises(VidchatError, match="not found"):
        load_manifest(OmegaConf.create({"kind": "folder", "root": str(release / "missing")}))


def test_read_record_takes_audio_from_a_separate_file(tmp_path):
    from vidchat.data.records import ClipRecord, read_record
    from vidchat.media import MediaError, write_clip

    video_only = write_clip(tmp_path / "v.mp4", np.zeros((16, 32, 32, 3), np.uint8), None, 8, 16000)
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)).astype(np.float32)
    sound = write_clip(tmp_path / "a.mp4", np.zeros((16, 32, 32, 3), np.uint8), tone, 8, 16000)
    with pytest.raises(MediaError, match="v.mp4"):
        read_record(ClipRecord("v", str(video_only)), fps=8, sample_rate=16000)
    clip = read_record(
        ClipRecord("v", str(video_only), audio_path=str(sound)), fps=8, sample_rate=16000
    )
    assert clip.frames.shape[0] == 16 and len(clip.audio) == 32000
    assert np.sqrt(np.mean(clip.audio[4000:28000] ** 2)) > 0.2  # the tone, not silence


def test_a_wide_video_is_centre_cropped_not_squashed(tmp_path):
    from vidchat.data.records import ClipRecord, read_record
    from vidchat.media import write_clip

    frames = np.zeros((8, 32, 96, 3), np.uint8)
    frames[:, :, 32:64] = 255  # a white square in the middle of a 3:1 frame
    path = write_clip(tmp_path / "wide.mp4", frames, np.zeros(16000, np.float32), 8, 16000)
    square = read_record(ClipRecord("w", str(path)), fps=8, size=16)
    assert square.frames.shape[1:3] == (16, 16) and square.frames[:, :, 2:-2].min() > 200
    kept = read_record(ClipRecord("w", str(path)), fps=8, size=(16, 48))  # not square: as asked
    assert kept.frames[:, :, :8].max() < 60
