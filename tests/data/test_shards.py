"""Token shards: exact round trip, crash-safe resume, bad clips skipped and listed, merged readers."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import EncodecConfig, EncodecModel

from vidchat.data.shards import ShardReader, ShardWriter
from vidchat.errors import VidchatError
from vidchat.media import write_clip, write_image
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer
from vidchat.training.config import TokenizeStageConfig
from vidchat.training.tokenize.stage import shard_dir, tokenize_records

META = {"video_spec": {"codebook_size": 1024}, "audio_spec": {"codebook_size": 1024}}


def fake_clip(rng: np.random.Generator, t: int = 5) -> tuple[np.ndarray, np.ndarray]:
    return rng.integers(0, 1024, (t, 4, 4)), rng.integers(0, 1024, (2, 3 * t))


def test_reader_returns_exactly_what_was_written(tmp_path):
    rng = np.random.default_rng(0)
    written = {f"c{i}": fake_clip(rng, t=3 + i) for i in range(7)}
    with ShardWriter(tmp_path, meta=META, clips_per_shard=3) as w:
        for cid, (v, a) in written.items():
            w.add(cid, v, a, {"speaker_id": cid})
        w.add_reference("ref/a.png", rng.integers(0, 1024, (4, 4)))
    assert len(list(tmp_path.glob("shard-*.npy"))) == 3  # 3 + 3 + 1 clips
    for mmap in (True, False):
        reader = ShardReader(tmp_path, mmap=mmap)
        assert reader.ids() == sorted(written) and len(reader) == 7
        for cid, (v, a) in written.items():
            clip = reader[cid]
            assert clip.video.dtype == np.uint16 and np.array_equal(clip.video, v)
            assert np.array_equal(clip.audio, a) and clip.meta["speaker_id"] == cid
    assert reader.reference_keys() == ["ref/a.png"]
    with pytest.raises(KeyError, match="nope"):
        reader["nope"]


def test_big_codebooks_use_int32(tmp_path):
    v = np.array([[[70000]]])
    with ShardWriter(tmp_path, meta=META, dtype=np.int32) as w:
        w.add("x", v, np.zeros((1, 1), int), {})
    assert ShardReader(tmp_path)["x"].video.dtype == np.int32
    with pytest.raises(ValueError, match="out of range"):
        ShardWriter(tmp_path / "u16", meta=META).add("x", v, np.zeros((1, 1), int), {})


def test_resume_after_crash_writes_each_clip_once(tmp_path):
    rng = np.random.default_rng(1)
    clips = {f"c{i}": fake_clip(rng) for i in range(10)}
    w = ShardWriter(tmp_path, meta=META, clips_per_shard=4)
    for cid in list(clips)[:6]:
        w.add(cid, *clips[cid], {})
    # "Crash": c4, c5 were buffered but never committed; a half-written temp file lies around.
    (tmp_path / ".shard-000-00001.npy.123.tmp").write_bytes(b"garbage")
    del w
    w = ShardWriter(tmp_path, meta=META, clips_per_shard=4)
    assert [c for c in clips if w.is_done(c)] == ["c0", "c1", "c2", "c3"]
    for cid in clips:
        if not w.is_done(cid):
            w.add(cid, *clips[cid], {})
    w.close()
    reader = ShardReader(tmp_path)
    assert reader.ids() == sorted(clips)
    for cid, (v, a) in clips.items():
        assert np.array_equal(reader[cid].video, v) and np.array_equal(reader[cid].audio, a)
    with pytest.raises(ValueError, match="already written"):
        ShardWriter(tmp_path, meta=META).add("c0", *clips["c0"], {})


def test_other_settings_are_refused_and_sets_merge(tmp_path):
    rng = np.random.default_rng(2)
    with ShardWriter(tmp_path / "a", meta=META) as w:
        w.add("a1", *fake_clip(rng), {})
    with ShardWriter(tmp_path / "b", meta=META) as w:
        w.add("b1", *fake_clip(rng), {})
    assert ShardReader([tmp_path / "a", tmp_path / "b"]).ids() == ["a1", "b1"]
    with pytest.raises(VidchatError, match="different settings"):
        ShardWriter(tmp_path / "a", meta={**META, "tokenizer": "other"})
    with pytest.raises(VidchatError, match="two shard sets"):
        ShardReader([tmp_path / "a", tmp_path / "a"])
    with pytest.raises(VidchatError, match="stage=tokenize"):
        ShardReader(tmp_path / "missing")


# --- the tokenize stage on real mp4 files ------------------------------------------------------


@dataclass
class Rec:
    clip_id: str
    path: Path
    speaker_id: str = "s0"
    start: float = 0.0
    duration: float | None = None
    bbox: list | None = None
    labels: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def tiny_tokenizers():
    return make_tiny_tokenizers()


def make_tiny_tokenizers() -> tuple[VQVideoTokenizer, EncodecAudioTokenizer]:
    """16 px frames, 4x4 codes; a 2-codebook EnCodec with random codebooks."""
    torch.manual_seed(0)
    video = VQVideoTokenizer(
        VQVideoConfig(
            frame_size=16, fps=8, downsample=4, channels=[8, 8], codebook_size=64, code_dim=4
        )
    ).eval()
    config = EncodecConfig(
        sampling_rate=16000,
        upsampling_ratios=[8, 5, 4, 4],
        num_filters=2,
        hidden_size=8,
        num_lstm_layers=1,
        codebook_size=64,
        target_bandwidths=[0.15, 0.3],
    )
    model = EncodecModel(config)
    for layer in model.quantizer.layers:
        layer.codebook.embed.normal_()
    return video, EncodecAudioTokenizer(model, num_codebooks=2).eval()


def make_records(root: Path, n: int = 4) -> list[Rec]:
    rng = np.random.default_rng(3)
    write_image(root / "ref_s0.png", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    recs = []
    for i in range(n):
        frames = rng.integers(0, 256, (12, 24, 24, 3), dtype=np.uint8)
        audio = (0.3 * np.sin(np.arange(8000) * 0.05 * (i + 1))).astype(np.float32)
        write_clip(root / f"clip{i}.mp4", frames, audio, fps=24, sample_rate=16000)
        recs.append(
            Rec(f"clip{i}", root / f"clip{i}.mp4", labels={"reference": str(root / "ref_s0.png")})
        )
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    recs.insert(2, Rec("broken", root / "broken.mp4"))
    return recs


NAMES = {"data": "toy", "tokenizer": "tiny"}


def stage_cfg(tmp_path: Path, **stage) -> TokenizeStageConfig:
    return TokenizeStageConfig(**{"num_workers": 0, "clips_per_shard": 2, **stage})


def toy_shard_dir(tmp_path: Path) -> Path:
    return shard_dir(tmp_path / "cache", "toy", "tiny")


def test_tokenize_skips_bad_clip_lists_it_and_matches_tokenizers(tmp_path, tiny_tokenizers):
    video, audio = tiny_tokenizers
    recs = make_records(tmp_path)
    cfg = stage_cfg(tmp_path)
    summary = tokenize_records(toy_shard_dir(tmp_path), cfg, recs, video, audio, names=NAMES)
    assert summary["clips_tokenized"] == 4 and summary["clips_failed_total"] == 1
    root = toy_shard_dir(tmp_path)
    assert root == tmp_path / "cache" / "tokens" / "toy-tiny"
    reader = ShardReader(root)
    assert reader.ids() == ["clip0", "clip1", "clip2", "clip3"]
    assert [f["clip_id"] for f in reader.failures()] == ["broken"]
    assert "broken" in (root / "failures-000.json").read_text()
    clip = reader["clip1"]
    assert clip.video.shape == (4, 4, 4)  # 0.5 s at 8 fps, 16 px / 4
    assert clip.audio.shape == (2, 13)  # ceil(8000 / 640)
    assert clip.reference is not None and clip.reference.shape == (4, 4)
    from vidchat.media import read_clip

    decoded = read_clip(recs[1].path, fps=8, size=16, sample_rate=16000)
    expect_v = video.encode(torch.from_numpy(decoded.frames)[None])[0].numpy()
    expect_a = audio.encode(torch.from_numpy(decoded.audio)[None])[0].numpy()
    assert np.array_equal(clip.video, expect_v) and np.array_equal(clip.audio, expect_a)
    # A rerun finds everything done (bad clip included) and writes nothing new.
    before = sorted(p.name for p in root.iterdir())
    assert tokenize_records(root, cfg, recs, video, audio, names=NAMES)["clips_tokenized"] == 0
    assert sorted(p.name for p in root.iterdir()) == before


def test_tokenize_splits_across_machines(tmp_path, tiny_tokenizers):
    video, audio = tiny_tokenizers
    recs = make_records(tmp_path, n=3)  # 4 records incl. the broken one
    for k in range(2):
        stage = stage_cfg(tmp_path, shard_index=k, num_shards=2, num_workers=1)
        tokenize_records(toy_shard_dir(tmp_path), stage, recs, video, audio, names=NAMES)
    reader = ShardReader(toy_shard_dir(tmp_path))
    assert reader.ids() == ["clip0", "clip1", "clip2"]
    assert {p.name[:9] for p in toy_shard_dir(tmp_path).glob("shard-*.npy")} == {
        "shard-000",
        "shard-001",
    }


@pytest.mark.parametrize(
    "damage", ["truncated_npy", "zeroed_npy", "truncated_index", "garbled_index"]
)
def test_damaged_shards_are_one_line_and_a_rerun_redoes_them(tmp_path, damage):
    rng = np.random.default_rng(3)
    clips = {f"c{i}": fake_clip(rng) for i in range(6)}
    with ShardWriter(tmp_path, meta=META, clips_per_shard=2) as w:
        for cid, (v, a) in clips.items():
            w.add(cid, v, a, {})
    npy, index = tmp_path / "shard-000-00001.npy", tmp_path / "shard-000-00001.index.json"
    if damage == "truncated_npy":
        npy.write_bytes(npy.read_bytes()[:-40])
    elif damage == "zeroed_npy":
        npy.write_bytes(bytes(npy.stat().st_size))
    elif damage == "truncated_index":
        index.write_text(index.read_text()[:50])
    else:
        index.write_text(index.read_text().replace('"c2"', '"c9"'))
    victim = index if "index" in damage else npy
    with pytest.raises(VidchatError, match=f"{victim.name}: .*stage=tokenize"):
        reader = ShardReader(tmp_path)
        for cid in clips:  # a zeroed shard is caught when it is first read
            reader[cid]
    w = ShardWriter(tmp_path, meta=META, clips_per_shard=2)  # the rerun of stage=tokenize
    todo = [cid for cid in clips if not w.is_done(cid)]
    assert todo == ["c2", "c3"]  # exactly the broken shard's clips are redone
    for cid in todo:
        w.add(cid, *clips[cid], {})
    w.close()
    reader = ShardReader(tmp_path)
    for cid, (v, a) in clips.items():
        assert np.array_equal(reader[cid].video, v) and np.array_equal(reader[cid].audio, a)
