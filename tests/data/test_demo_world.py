"""The demo world: real decodable mp4s, lip sync, labels, caching, splits."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.conftest import make_demo_cfg
from vidchat.data.demo_world.face import measure_mouth_opening
from vidchat.data.demo_world.speech import audio_envelope
from vidchat.data.demo_world.world import MARKER
from vidchat.data.records import read_record
from vidchat.data.sources.demo import ensure_demo_world
from vidchat.data.speakervid.archive import iter_members
from vidchat.media import probe, read_image
from vidchat.perception.signal import pearson


def test_clips_decode_with_declared_rates(demo_world):
    records = demo_world.manifest.records
    assert len(records) == 4 * 3 * 2  # conversations x turns x (speaker, listener)
    for record in records[:6]:  # the release's cut clips: a video-only mp4 beside a 16 kHz wav
        info, sound = probe(record.path), probe(record.audio_path)
        assert (info.width, info.height, info.fps, info.sample_rate) == (64, 64, 24.0, None)
        assert (sound.sample_rate, sound.channels) == (16000, 1)
        clip = read_record(record)
        frames = record.labels["mouth_opening"]
        assert clip.frames.shape == (len(frames), 64, 64, 3)
        assert clip.duration == pytest.approx(record.labels["duration"], abs=1 / 24)
        assert abs(len(clip.audio) - clip.duration * 16000) <= 16000 / 24
        assert 1.0 - 1 / 24 <= clip.duration <= 2.0 + 1 / 24


def test_lip_sync_in_talking_clips_and_none_in_listening(demo_world):
    talking = [r for r in demo_world.manifest.records if r.is_talking]
    listening = [r for r in demo_world.manifest.records if not r.is_talking]
    peaks = []
    for record in talking:
        clip = read_record(record)
        mouth = measure_mouth_opening(clip.frames)
        envelope = audio_envelope(clip.audio, clip.sample_rate, clip.fps, clip.num_frames)
        assert pearson(mouth, envelope) > 0.8, record.clip_id
        peaks.append(mouth.max())
        # the model-side view (8 fps, 32x32) keeps the mouth readable and in sync
        small = read_record(record, fps=8, size=32)
        mouth = measure_mouth_opening(small.frames)
        envelope = audio_envelope(small.audio, 16000, 8, small.num_frames, window=1 / 24)
        assert pearson(mouth, envelope) > 0.8, record.clip_id
    assert min(peaks) > 0.5
    for record in listening:
        clip = read_record(record)
        mouth = measure_mouth_opening(clip.frames)
        assert mouth.max() < 0.05 * min(peaks), record.clip_id  # shut while the partner talks
        assert (
            audio_envelope(clip.audio, 16000, 24, clip.num_frames).max() > 0.05
        )  # partner audible


def test_labels_identities_and_emotion_rule(demo_world):
    records = demo_world.manifest.records
    by_conversation: dict[str, list] = {}
    for record in records:
        labels = record.labels
        assert record.speaker_id == labels["identity"]
        assert labels["emotion"] in {"happy", "neutral", "sad"}
        assert record.reference and read_image(record.reference).shape == (64, 64, 3)
        by_conversation.setdefault(record.conversation, []).append(record)
        if record.is_talking:
            starts = [s for s, _ in labels["syllables"]]
            assert starts == sorted(starts) and len(starts) >= 2
    for clips in by_conversation.values():
        assert len({r.speaker_id for r in clips}) == 2
    for pair in demo_world.manifest.pairs:  # dialogue rule: the responder mirrors the partner
        assert pair.responder.labels["emotion"] == pair.partner.labels["emotion"]
        assert pair.reference == pair.responder.reference
    identities = json.loads((demo_world.root / "identities.json").read_text())
    assert len({tuple(p["skin"]) + tuple(p["shirt"]) for p in identities}) == len(identities)


def test_reference_faces_are_distinct_at_32px(demo_world):
    refs = sorted((demo_world.root / "refs").glob("*.png"))
    assert len(refs) == 8
    small = np.stack([read_image(p, size=32).astype(np.float32) for p in refs])
    dists = np.abs(small[:, None] - small[None]).mean(axis=(2, 3, 4))
    assert dists[~np.eye(len(refs), dtype=bool)].min() > 10  # mean abs pixel difference


def test_splits_by_conversation_and_release_files(demo_world):
    manifest = demo_world.manifest
    assert {k: len(v) for k, v in manifest.splits.items()} == {"train": 2, "val": 1, "test": 1}
    test_ids = {r.clip_id for r in manifest.records_for("test")}
    testset = json.loads((demo_world.root / "testset.json").read_text())
    assert testset and all(p["partner"] in test_ids and p["responder"] in test_ids for p in testset)
    assert (demo_world.root / "test_pairs.jsonl").exists()
    branches = {p.branch for p in manifest.pairs}
    assert branches == {"dialogue", "listening", "multi_turn"}


def test_cached_until_config_changes(tmp_path):
    root = tmp_path / "demo"
    cfg = make_demo_cfg(
        root, num_conversations=1, turns_per_conversation=2, turn_seconds=[0.5, 0.5]
    )
    ensure_demo_world(root, cfg, progress=False)
    marker = json.loads((root / MARKER).read_text())
    clip = next((root / "videos").glob("*/*.mp4"))
    stamp = clip.stat().st_mtime_ns
    ensure_demo_world(root, cfg, progress=False)  # cached: nothing rewritten
    assert clip.stat().st_mtime_ns == stamp
    cfg.seed = 1
    ensure_demo_world(root, cfg, progress=False)  # new config: regenerated
    assert json.loads((root / MARKER).read_text())["config_hash"] != marker["config_hash"]
    assert len(list((root / "videos").glob("*/*.mp4"))) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo.tmp")]


def _digests(root) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generation_is_deterministic(tmp_path, demo_world):
    """Byte for byte: clips (mp4 and wav), tar batches and list files."""
    cfg = make_demo_cfg(tmp_path / "again", num_conversations=1)
    for name in ("again", "twice"):
        ensure_demo_world(tmp_path / name, cfg, progress=False)
    assert _digests(tmp_path / "again") == _digests(tmp_path / "twice")
    fresh = {m.stem: json.loads(m.data) for m in iter_members(tmp_path / "again" / "merged_anno")}
    cached = {m.stem: json.loads(m.data) for m in iter_members(demo_world.root / "merged_anno")}
    for stem, anno in fresh.items():  # the first conversation, as in the larger cached world
        assert anno["demo"]["mouth_opening"] == cached[stem]["demo"]["mouth_opening"]
        assert anno["demo"]["identity"] == cached[stem]["demo"]["identity"]


def test_an_unwritable_root_is_one_error_not_a_hang(tmp_path):
    from vidchat.errors import VidchatError

    (tmp_path / "file").write_text("x")
    for root in ("/proc/vidchat-demo", tmp_path / "file" / "demo"):
        with pytest.raises(VidchatError, match="data.root"):
            ensure_demo_world(root, make_demo_cfg(tmp_path), progress=False)


def test_a_demo_world_is_generated_only_in_the_cache_or_when_asked(tmp_path):
    """`data=demo data.root=/nonexistent` once created that folder and ran a full job (#30 item
    7); through a data config the world is generated only under the data cache, or into
    data.root with data.generate_world=true, and never over a folder of the user's."""
    from vidchat.data.config import DataConfig
    from vidchat.data.manifest import load_manifest
    from vidchat.errors import VidchatError

    def config(root, **extra):
        cfg = make_demo_cfg(root, num_conversations=2)
        cfg.cache_dir = str(tmp_path / "cache")
        for key, value in extra.items():
            cfg[key] = value
        return DataConfig.from_cfg(cfg)

    elsewhere = tmp_path / "typo" / "demo"
    with pytest.raises(VidchatError, match="data.generate_world=true"):
        load_manifest(config(elsewhere))
    assert not (tmp_path / "typo").exists()  # nothing created
    assert load_manifest(config(elsewhere, generate_world=True)).records  # asked: generated
    assert load_manifest(config(tmp_path / "cache" / "demo")).records  # the cache: unasked
    mine = tmp_path / "my_videos"
    mine.mkdir()
    (mine / "holiday.mp4").write_bytes(b"precious")
    with pytest.raises(VidchatError, match="holds files that are not a demo world"):
        load_manifest(config(mine, generate_world=True))
    assert (mine / "holiday.mp4").read_bytes() == b"precious"
