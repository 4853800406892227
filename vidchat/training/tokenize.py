"""`python train.py stage=tokenize`: decode every clip of the manifest once, write token shards.

Resumable (rerun the same command after a crash), split across machines
(`stage.shard_index=k stage.num_shards=N` processes clip i when i % N == k), decodes with several
DataLoader workers, skips and lists clips that fail to decode (`failures-<k>.json`).
Training finds the shards with `shard_dir(cfg)`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vidchat.data.shards import ShardReader, ShardWriter
from vidchat.errors import ConfigError
from vidchat.media import read_clip, read_image
from vidchat.tokenizers import (
    AudioTokenizer,
    VideoTokenizer,
    build_audio_tokenizer,
    build_video_tokenizer,
)
from vidchat.tokenizers.codec import ClipCodec, encode_frames

log = logging.getLogger("vidchat")


def shard_dir(cfg: DictConfig) -> Path:
    """Where the token shards of this data + tokenizer pair live.

    `data.tokens_dir` when set, else `${paths.data_dir}/tokens/<data.name>-<tokenizer.name>`.
    """
    if cfg.data.get("tokens_dir"):
        return Path(cfg.data.tokens_dir)
    data_name = cfg.data.get("name")
    tok_name = cfg.tokenizer.get("name")
    if not data_name or not tok_name:
        raise ConfigError("data.name and tokenizer.name must be set to locate the token shards")
    return Path(cfg.paths.data_dir) / "tokens" / f"{data_name}-{tok_name}"


def open_shards(cfg: DictConfig) -> ShardReader:
    """The `ShardReader` over `shard_dir(cfg)` (a clear error if `stage=tokenize` never ran)."""
    return ShardReader(shard_dir(cfg))


def reference_path(record: Any) -> str | None:
    """The record's reference image (e.g. one PNG per identity in the demo world), if any."""
    for name in ("reference", "reference_image", "ref_image"):
        value = getattr(record, name, None) or (getattr(record, "labels", None) or {}).get(name)
        if value:
            return str(value)
    return None


def record_meta(record: Any) -> dict[str, Any]:
    meta = dataclasses.asdict(record) if dataclasses.is_dataclass(record) else dict(vars(record))
    ref = reference_path(record)
    if ref:
        meta["reference"] = ref
    return meta


class DecodeDataset(Dataset):
    """Decodes clip i in a DataLoader worker: (i, frames `[T,H,W,3]`, audio `[S]`, error or None)."""

    def __init__(
        self, records: list[Any], fps: float, size: tuple[int, int], sample_rate: int
    ) -> None:
        self.records, self.fps, self.size, self.sample_rate = records, fps, size, sample_rate

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, np.ndarray | None, str | None]:
        rec = self.records[i]
        try:
            clip = read_clip(
                rec.path,
                fps=self.fps,
                size=self.size,
                sample_rate=self.sample_rate,
                start=rec.start or 0.0,
                duration=rec.duration,
                bbox=rec.bbox,
            )
            if clip.num_frames == 0:
                raise ValueError("no video frames decoded")
            return i, clip.frames, clip.audio, None
        except Exception as exc:  # any bad clip is skipped and listed, never fatal
            return i, None, None, f"{type(exc).__name__}: {exc}"


def shard_meta(cfg: DictConfig, video: VideoTokenizer, audio: AudioTokenizer) -> dict[str, Any]:
    return {
        "data": str(cfg.data.get("name")),
        "tokenizer": str(cfg.tokenizer.get("name")),
        "video_spec": video.spec.to_dict(),
        "audio_spec": audio.spec.to_dict(),
        "video_weights": video.fingerprint,
        "audio_weights": audio.fingerprint,
    }


def tokenize(cfg: DictConfig) -> dict[str, Any]:
    """Stage entry: tokenize this worker's share of the manifest into `shard_dir(cfg)`."""
    from vidchat.data.manifest import load_manifest

    video_tok = build_video_tokenizer(cfg.tokenizer.video)
    audio_tok = build_audio_tokenizer(cfg.tokenizer.audio)
    return tokenize_records(cfg, load_manifest(cfg.data).records, video_tok, audio_tok)


def _worker_share(cfg: DictConfig, records: list[Any]) -> tuple[int, list[Any]]:
    """(k, the records of worker k of `stage.num_shards`): clip i goes to worker i % N."""
    s = cfg.stage
    k, n = int(s.get("shard_index", 0)), int(s.get("num_shards", 1))
    if not 0 <= k < n:
        raise ConfigError(f"stage.shard_index={k} must be in [0, stage.num_shards={n})")
    return k, [r for i, r in enumerate(records) if i % n == k]


def _add_references(writer: ShardWriter, todo: list[Any], codec: ClipCodec) -> None:
    """Reference images (one per identity in the demo world): tiny, tokenized in this process."""
    for ref in sorted(
        {p for r in todo if (p := reference_path(r)) and not writer.has_reference(p)}
    ):
        try:
            image = read_image(ref, size=codec.frame_size)  # [H,W,3]
            writer.add_reference(ref, encode_frames(codec.video, image[None])[0].numpy())
        except Exception as exc:
            log.warning("reference image %s skipped: %s", ref, exc)


def _decode_loader(todo: list[Any], codec: ClipCodec, workers: int) -> DataLoader:
    dataset = DecodeDataset(todo, codec.fps, codec.frame_size, codec.sample_rate)
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        collate_fn=lambda x: x,
        prefetch_factor=4 if workers else None,
    )


def tokenize_records(
    cfg: DictConfig, records: list[Any], video_tok: VideoTokenizer, audio_tok: AudioTokenizer
) -> dict[str, Any]:
    """Tokenize this worker's share of `records` (ClipRecord-like) into `shard_dir(cfg)`."""
    codec = ClipCodec(video_tok, audio_tok)
    k, records = _worker_share(cfg, records)
    wide = video_tok.spec.code_dtype != np.uint16 or audio_tok.spec.code_dtype != np.uint16
    root = shard_dir(cfg)
    writer = ShardWriter(
        root,
        meta=shard_meta(cfg, video_tok, audio_tok),
        dtype=np.dtype(np.int32 if wide else np.uint16),
        clips_per_shard=int(cfg.stage.clips_per_shard),
        worker=k,
    )
    todo = [r for r in records if not writer.is_done(r.clip_id)]
    log.info("tokenize: %d clips for worker %d, %d already done", len(records), k,
             len(records) - len(todo))  # fmt: skip
    _add_references(writer, todo, codec)
    start, done = time.perf_counter(), 0
    loader = _decode_loader(todo, codec, int(cfg.stage.num_workers))
    bar = tqdm(loader, total=len(todo), desc=f"tokenize {root.name}", unit="clip")
    for i, frames, audio, error in bar:
        rec = todo[i]
        if error is not None:
            writer.add_failure(rec.clip_id, str(rec.path), error)
            log.warning("skipping clip %s: %s", rec.clip_id, error)
        else:
            meta = {**record_meta(rec), "fps": codec.fps, "sample_rate": codec.sample_rate,
                    "num_frames": len(frames), "num_samples": len(audio)}  # fmt: skip
            codes = codec.encode_clip(frames, audio)
            writer.add(rec.clip_id, codes.video.numpy(), codes.audio.numpy(), meta)
            bar.set_postfix(failed=writer.num_failed)
        done += 1
    writer.close()
    return _summary(writer, root, k, done, time.perf_counter() - start)


def _summary(writer: ShardWriter, root: Path, k: int, done: int, elapsed: float) -> dict[str, Any]:
    summary = {
        "shard_dir": str(root),
        "clips_tokenized": writer.written_clips,
        "clips_failed_total": len(writer.failures),
        "clips_per_s": round(done / elapsed, 2) if elapsed > 0 and done else 0.0,
    }
    print(f"tokenize: {summary}")
    if writer.failures:
        print(
            f"tokenize: {len(writer.failures)} clip(s) failed, listed in {root}/failures-{k:03d}.json"
        )
    return summary
