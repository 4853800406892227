"""`python train.py stage=tokenize`: decode every clip of the manifest once, write token shards.

Resumable (rerun the same command after a crash; a clip whose files changed since it was
tokenized or failed is redone, and `stage.retry_failed=true` retries every failed clip), split across machines
(`stage.shard_index=k stage.num_shards=N` processes clip i when i % N == k), decodes with several
DataLoader workers, skips and lists clips that fail to decode (`failures-<k>.json`).
Training finds the shards with `shard_dir(...)`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from vidchat.data.config import DataConfig
from vidchat.data.decode import DecodeDataset, DecodedClip, DecodeStalled, decode_in_workers
from vidchat.data.records import source_signature
from vidchat.data.shards import ShardWriter
from vidchat.errors import VidchatError
from vidchat.media import read_image
from vidchat.tokenizers import (
    AudioTokenizer,
    VideoTokenizer,
    build_audio_tokenizer,
    build_video_tokenizer,
)
from vidchat.tokenizers.codec import ClipCodec, encode_frames
from vidchat.training.config import (
    LM_ONLY_KEYS,
    TOKENIZER_ONLY_KEYS,
    TokenizeStageConfig,
    shard_dir,
)
from vidchat.utils.config import to_plain
from vidchat.utils.typed import from_node

log = logging.getLogger("vidchat")


def shard_dir_for(cfg: Any) -> Path:
    """`shard_dir` for a root config (entry points, scripts and tests)."""
    root = to_plain(cfg)
    data, tokenizer = root.get("data") or {}, root.get("tokenizer") or {}
    return shard_dir(
        root["paths"]["data_dir"],
        data.get("name") or data.get("kind"),
        tokenizer.get("name"),
        data.get("tokens_dir"),
    )


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


def shard_meta(
    names: dict[str, str], video: VideoTokenizer, audio: AudioTokenizer
) -> dict[str, Any]:
    return {
        "data": str(names.get("data")),
        "tokenizer": str(names.get("tokenizer")),
        "video_spec": video.spec.to_dict(),
        "audio_spec": audio.spec.to_dict(),
        "video_weights": video.fingerprint,
        "audio_weights": audio.fingerprint,
    }


def tokenize(cfg: DictConfig) -> dict[str, Any]:
    """Stage entry (`stage=tokenize`): this worker's share of the manifest -> its shard folder."""
    stage = from_node(
        TokenizeStageConfig,
        cfg.stage,
        "stage",
        ignore=LM_ONLY_KEYS + TOKENIZER_ONLY_KEYS + ("max_steps", "batch_size"),
    )
    return run_tokenize(
        stage, DataConfig.from_cfg(cfg.data), to_plain(cfg.tokenizer), str(cfg.paths.data_dir)
    )


def run_tokenize(
    stage: TokenizeStageConfig, data: DataConfig, tokenizer: dict[str, Any], data_dir: str
) -> dict[str, Any]:
    """Tokenize here, or on Ray with `stage.ray_workers` (the stage and the LM stages' own
    tokenize run alike)."""
    if stage.ray_workers:
        from vidchat.training.tokenize.ray_workers import tokenize_on_ray

        return tokenize_on_ray(tokenize_data, stage, data, tokenizer, data_dir)
    return tokenize_data(stage, data, tokenizer, data_dir)


def tokenize_device(setting: str) -> str:
    """`stage.device` -> a torch device: `auto` is the first visible GPU, else the CPU (a Ray
    worker sees only the GPUs of its share)."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise VidchatError(f"stage.device={setting}: CUDA is not available on this machine")
    return setting


def tokenize_data(
    stage: TokenizeStageConfig,
    data: DataConfig,
    tokenizer: dict[str, Any],
    data_dir: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Tokenize the clips `data` lists with the tokenizers `tokenizer` names."""
    from vidchat.data.manifest import load_manifest

    device = tokenize_device(stage.device)
    video_tok = build_video_tokenizer(tokenizer["video"]).to(device)
    data.video.check_tokenizer(video_tok.spec.to_dict(), "tokenizer.video")
    audio_tok = build_audio_tokenizer(tokenizer["audio"]).to(device)
    names = {"data": data.display_name, "tokenizer": str(tokenizer.get("name"))}
    root = shard_dir(data_dir, names["data"], names["tokenizer"], data.tokens_dir)
    records = load_manifest(data).records
    if not records:
        raise VidchatError(
            f"data.root={data.root} with data.subset={data.subset} selects no "
            "clips: nothing to tokenize"
        )
    return tokenize_records(
        root, stage, records, video_tok, audio_tok, names=names, progress=progress
    )


def _worker_share(stage: TokenizeStageConfig, records: list[Any]) -> tuple[int, list[Any]]:
    """(k, the records of worker k of `stage.num_shards`): clip i goes to worker i % N."""
    k, n = stage.shard_index, stage.num_shards
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


class Progress(Protocol):
    """Where a tokenize worker reports its progress (default: its own tqdm bar)."""

    def start(self, total: int) -> None: ...

    def step(self) -> None: ...


def tokenize_records(
    root: Path,
    stage: TokenizeStageConfig,
    records: list[Any],
    video_tok: VideoTokenizer,
    audio_tok: AudioTokenizer,
    *,
    names: dict[str, str],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Tokenize this worker's share of `records` (ClipRecord-like) into shards under `root`;
    `names` (data, tokenizer) are recorded in the shards' meta. `progress` replaces the bar
    (a Ray worker reports to the driver's)."""
    codec = ClipCodec(video_tok, audio_tok)
    k, records = _worker_share(stage, records)
    wide = video_tok.spec.code_dtype != np.uint16 or audio_tok.spec.code_dtype != np.uint16
    writer = ShardWriter(
        root,
        meta=shard_meta(names, video_tok, audio_tok),
        dtype=np.dtype(np.int32 if wide else np.uint16),
        clips_per_shard=stage.clips_per_shard,
        worker=k,
        commit_seconds=stage.commit_seconds,
    )
    sources = {r.clip_id: source_signature(r) for r in records}
    todo = [
        r for r in records if not writer.is_done(r.clip_id, sources[r.clip_id], stage.retry_failed)
    ]
    redo = sum(writer.is_done(r.clip_id) for r in todo)  # held, but from other inputs (or failed)
    log.info(
        "tokenize: %d clips for worker %d, %d already done, %d to redo (inputs changed%s)",
        len(records),
        k,
        len(records) - len(todo),
        redo,
        ", or failed and stage.retry_failed" if stage.retry_failed else "",
    )
    _add_references(writer, todo, codec)
    start, done = time.perf_counter(), 0
    dataset = DecodeDataset(todo, codec.fps, codec.frame_size, codec.sample_rate)
    decoded = decode_in_workers(dataset, stage.num_workers, stage.decode_timeout)
    bar = tqdm(
        _named_stalls(decoded, todo),
        total=len(todo),
        desc=f"tokenize {root.name}",
        unit="clip",
        disable=progress is not None,
    )
    if progress is not None:
        progress.start(len(todo))
    try:
        for i, frames, audio, error in bar:
            _write_clip(writer, codec, todo[i], frames, audio, error, sources[todo[i].clip_id])
            bar.set_postfix(failed=writer.num_failed)
            done += 1
            if progress is not None:
                progress.step()
    except VidchatError:  # a stalled worker: keep what was decoded, a rerun resumes after it
        writer.flush()
        raise
    writer.close()
    return _summary(writer, root, k, done, time.perf_counter() - start)


def _write_clip(
    writer: ShardWriter,
    codec: ClipCodec,
    rec: Any,
    frames: np.ndarray | None,
    audio: np.ndarray | None,
    error: str | None,
    source: dict[str, Any],
) -> None:
    """One decoded clip (or its failure) into the shards, with the files it was made from."""
    if error is not None:
        writer.add_failure(rec.clip_id, str(rec.path), error, source)
        log.warning("skipping clip %s: %s", rec.clip_id, error)
        return
    meta = {
        **record_meta(rec),
        "fps": codec.fps,
        "sample_rate": codec.sample_rate,
        "num_frames": len(frames),
        "num_samples": len(audio),
        "source": source,
    }
    codes = codec.encode_clip(frames, audio)
    writer.add(rec.clip_id, codes.video.numpy(), codes.audio.numpy(), meta)


def _named_stalls(decoded: Iterator[DecodedClip], todo: list[Any]) -> Iterator[DecodedClip]:
    """`decoded`, with a stall turned into an error that names the clip it waited for (the
    caller commits the clips decoded before it: a rerun resumes after them)."""
    try:
        yield from decoded
    except DecodeStalled as exc:
        rec = todo[exc.index]
        raise VidchatError(
            f"tokenize: {exc} while waiting for clip {rec.clip_id} ({rec.path}); "
            "raise stage.decode_timeout if such a clip takes longer to "
            "decode, or set stage.num_workers=0 to decode it in the run "
            "itself"
        ) from None


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
