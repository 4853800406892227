"""Token shards are bound to the files they were made from: tokens are never reused for other
inputs (another data.root, other files under the same names), a failed clip is retried once its
files change (a missing .wav added), `stage.retry_failed` retries the rest, and a training stage
refuses a stale set it did not make with one line."""

from __future__ import annotations

import numpy as np
import pytest
from test_shards import NAMES, make_tiny_tokenizers, stage_cfg, toy_shard_dir

from vidchat.data.records import ClipRecord, source_signature
from vidchat.data.shards import ShardReader
from vidchat.media import write_clip, write_wav
from vidchat.training.tokenize.stage import tokenize_records

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny_tokenizers():
    return make_tiny_tokenizers()


def clips(root, seed: int, n: int = 3, audio: bool = True) -> list[ClipRecord]:
    """n 0.5 s clips named clip0.. under root (random frames from `seed`); without `audio`,
    video-only files whose audio must come from a .wav beside them."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        frames = rng.integers(0, 256, (12, 24, 24, 3), dtype=np.uint8)
        tone = (0.3 * np.sin(np.arange(8000) * 0.01 * (seed + i + 1))).astype(np.float32)
        write_clip(
            root / f"clip{i}.mp4", frames, tone if audio else None, fps=24, sample_rate=16000
        )
        out.append(ClipRecord(f"clip{i}", str(root / f"clip{i}.mp4")))
    return out


def tokenize(tmp_path, records, tokenizers, **stage):
    video, audio = tokenizers
    return tokenize_records(
        toy_shard_dir(tmp_path), stage_cfg(tmp_path, **stage), records, video, audio, names=NAMES
    )


def test_another_root_with_the_same_clip_names_is_tokenized_again(tmp_path, tiny_tokenizers):
    a, b = clips(tmp_path / "A", seed=1), clips(tmp_path / "B", seed=2)
    assert tokenize(tmp_path, a, tiny_tokenizers)["clips_tokenized"] == 3
    codes_a = {c: ShardReader(toy_shard_dir(tmp_path))[c].video for c in ("clip0", "clip1")}
    assert tokenize(tmp_path, b, tiny_tokenizers)["clips_tokenized"] == 3  # not "3 already done"
    reader = ShardReader(toy_shard_dir(tmp_path))
    assert reader.ids() == ["clip0", "clip1", "clip2"]  # each clip once: B's entry supersedes A's
    for rec in b:
        assert reader.source(rec.clip_id) == source_signature(rec)
        assert reader[rec.clip_id].meta["path"] == rec.path
    assert not np.array_equal(reader["clip0"].video, codes_a["clip0"])
    assert tokenize(tmp_path, b, tiny_tokenizers)["clips_tokenized"] == 0  # and now it is done


def test_files_replaced_under_the_same_names_are_tokenized_again(tmp_path, tiny_tokenizers):
    records = clips(tmp_path / "A", seed=1)
    tokenize(tmp_path, records, tiny_tokenizers)
    clips(tmp_path / "A", seed=5, n=1)  # clip0.mp4 rewritten with other frames
    assert tokenize(tmp_path, records, tiny_tokenizers)["clips_tokenized"] == 1
    assert ShardReader(toy_shard_dir(tmp_path)).source("clip0") == source_signature(records[0])


def test_a_failed_clip_is_retried_when_its_wav_appears(tmp_path, tiny_tokenizers):
    records = clips(tmp_path / "A", seed=1, audio=False)  # video only, no .wav yet
    summary = tokenize(tmp_path, records, tiny_tokenizers)
    assert summary["clips_tokenized"] == 0 and summary["clips_failed_total"] == 3
    assert tokenize(tmp_path, records, tiny_tokenizers)["clips_tokenized"] == 0  # nothing changed
    write_wav(tmp_path / "A" / "clip1.wav", np.zeros(8000, np.float32), 16000)
    summary = tokenize(tmp_path, records, tiny_tokenizers)
    assert summary["clips_tokenized"] == 1
    reader = ShardReader(toy_shard_dir(tmp_path))
    assert reader.ids() == ["clip1"]
    assert sorted(f["clip_id"] for f in reader.failures()) == ["clip0", "clip2"]


def test_retry_failed_retries_failures_with_unchanged_files(tmp_path, tiny_tokenizers):
    records = clips(tmp_path / "A", seed=1, n=2, audio=False)
    tokenize(tmp_path, records, tiny_tokenizers)
    assert tokenize(tmp_path, records, tiny_tokenizers)["clips_per_s"] == 0  # nothing to decode
    again = tokenize(tmp_path, records, tiny_tokenizers, retry_failed=True)
    assert again["clips_per_s"] > 0 and again["clips_failed_total"] == 2  # decoded, failed again
    assert len(ShardReader(toy_shard_dir(tmp_path)).failures()) == 2  # one entry each, the newest


def test_a_stale_set_the_user_made_is_refused_in_one_line(tmp_path, tiny_tokenizers, monkeypatch):
    """The LM stage checks the set against the data before training: a set made from folder A
    is refused for folder B (the stage never silently trains on A's tokens)."""
    import vidchat.training.lm.data as lm_data
    from vidchat.cli import compose
    from vidchat.data.config import DataConfig
    from vidchat.errors import VidchatError

    a, b = clips(tmp_path / "A", seed=1), clips(tmp_path / "B", seed=2)
    tokenize(tmp_path, a, tiny_tokenizers)
    reader = ShardReader(toy_shard_dir(tmp_path))
    job_for = {}
    for name in ("A", "B"):
        data = compose("train", ["data=folder", f"data.root={tmp_path / name}"]).data
        job_for[name] = DataConfig.from_cfg(data)
    job = type("Job", (), {})()
    job.data = job_for["A"]
    assert lm_data._stale_clip(job, reader, missing=True) is None
    job.data = job_for["B"]
    assert "clip0 was tokenized from other files than" in lm_data._stale_clip(job, reader, False)
    job.shard_root = toy_shard_dir(tmp_path)
    with pytest.raises(VidchatError) as info:
        lm_data.ensure_shards(job)
    assert "tokens are stale" in str(info.value) and "\n" not in str(info.value)
    assert str(b[0].path) in str(info.value)
