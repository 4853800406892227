"""Stage entries that train the tokenizers: `python train.py stage=video_tokenizer|audio_codec`.

Each stage decodes the manifest's clips once (cached in memory), trains with Lightning via
`vidchat.training.trainer.build_trainer`, exports the weights to the checkpoint the tokenizer config
names (`tokenizer.video.checkpoint` / `tokenizer.audio.checkpoint`), reloads that export and records
its held-out reconstruction quality in `<stem>.metrics.json` next to the weights.

Weights go to `stage.export` (default `checkpoints/tokenizers/<stage>`); point later stages at
them with `tokenizer.video.checkpoint=...` / `tokenizer.audio.checkpoint=...`. The demo
checkpoints under checkpoints/demo/ were made with (data=demo, tokenizer=demo defaults):
    python train.py stage=video_tokenizer stage.torch_threads=1 stage.export=checkpoints/demo/video_tokenizer
    python train.py stage=audio_codec stage.torch_threads=1 stage.export=checkpoints/demo/audio_codec
held-out results: video PSNR 34.4 dB, 88% of 1024 codes used; audio envelope correlation 0.97,
log-mel L1 1.11 (see the .metrics.json files). The 64 px recipe: `experiment=demo64`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from transformers import EncodecConfig

import vidchat.training.safe_load as safe_load
from vidchat.data.config import DataConfig
from vidchat.errors import ConfigError, VidchatError
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.checkpoint import metrics_path
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer
from vidchat.training.config import LM_ONLY_KEYS, RunConfig, TokenizerStageConfig
from vidchat.training.tokenizers.data import (
    AudioSegmentDataset,
    FrameDataset,
    decode_records,
    split_records,
)
from vidchat.training.tokenizers.evaluate import evaluate_audio_codec, evaluate_video_tokenizer
from vidchat.training.tokenizers.modules import AudioCodecModule, VideoTokenizerModule
from vidchat.utils.atomic import atomic_write_json
from vidchat.utils.config import to_plain
from vidchat.utils.typed import from_node

log = logging.getLogger("vidchat")
T = TypeVar("T")


@dataclass(frozen=True)
class TokenizerJob:
    """What a tokenizer stage reads, typed at its entry point."""

    run: RunConfig
    stage: TokenizerStageConfig
    data: DataConfig
    tokenizer: dict[str, Any]

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> TokenizerJob:
        stage = from_node(TokenizerStageConfig, cfg.stage, "stage", ignore=LM_ONLY_KEYS)
        return cls(
            RunConfig.from_cfg(cfg, stage.name),
            stage,
            DataConfig.from_cfg(cfg.data),
            to_plain(cfg.tokenizer),
        )


def _records(job: TokenizerJob) -> tuple[list[Any], list[Any]]:
    """(train, val) clip records: the manifest's own splits, else a hash split by clip id."""
    from vidchat.data.manifest import load_manifest

    manifest = load_manifest(job.data)
    train, val = manifest.records_for("train"), manifest.records_for("val")
    if not train or not val:
        train, val = split_records(manifest.records, job.stage.val_fraction)
    if job.stage.max_clips:
        train = train[: job.stage.max_clips]
    if not train:
        raise VidchatError(f"data={job.data.display_name}: the manifest lists no clips to train on")
    return train, val


def _setup(job: TokenizerJob) -> None:
    torch.manual_seed(job.run.seed)
    if job.stage.torch_threads:
        torch.set_num_threads(job.stage.torch_threads)


def _fit(job: TokenizerJob, module, train_loader, val_loader) -> None:
    from vidchat.training.checkpoint_io import last_checkpoint
    from vidchat.training.trainer import build_trainer

    run_dir = job.run.output_root()
    trainer = build_trainer(job.run, max_steps=job.stage.max_steps, default_root_dir=run_dir)
    ckpt = last_checkpoint(run_dir) if job.run.resume else None
    safe_load.fit(trainer, module, train_loader, val_loader, ckpt_path=str(ckpt) if ckpt else None)


def export_path(job: TokenizerJob, which: str) -> str:
    """`stage.export` (default: under `paths.checkpoint_dir`, so a new run never overwrites the
    shipped demo tokenizers that the demo LM was trained on), else `tokenizer.<which>.checkpoint`."""
    path = job.stage.export or (job.tokenizer.get(which) or {}).get("checkpoint")
    if not path:
        raise ConfigError("stage.export is not set: where should the trained weights go?")
    return str(path)


def video_config(job: TokenizerJob) -> VQVideoConfig:
    """Architecture from `tokenizer.video.model`, frame size/fps from the data config."""
    model_cfg = dict((job.tokenizer.get("video") or {}).get("model") or {})
    model_cfg.setdefault("frame_size", job.data.video.size)
    model_cfg.setdefault("fps", job.data.video.fps)
    try:
        return VQVideoConfig(**model_cfg)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tokenizer.video.model: {exc}") from exc


def save_and_measure(job: TokenizerJob, which: str, tokenizer, measure, val_recs) -> dict:
    """Export the trained weights, reload them and record their held-out quality next to them."""
    out = export_path(job, which)
    tokenizer.save(out, fp16=job.stage.fp16, extra={"trained_steps": job.stage.max_steps})
    metrics = measure(type(tokenizer).load(out).eval())
    atomic_write_json(
        metrics_path(out),
        {"held_out": metrics, "val_clips": [r.clip_id for r in val_recs]},
        indent=2,
        sort_keys=True,
    )
    log.info("%s saved to %s: %s", job.stage.name, out, metrics)
    print(f"{job.stage.name.replace('_', ' ')} -> {out}: {metrics}")
    return metrics


TokenizerTrainer = Callable[[TokenizerJob], dict[str, float]]
TRAINERS: dict[tuple[str, str], TokenizerTrainer] = {}
"""(stream, `tokenizer.<stream>.kind`) -> the trainer the tokenizer stage runs for it."""
DEFAULT_KINDS = {"video": "vq", "audio": "encodec"}


def register_tokenizer_trainer(stream: str, kind: str) -> Callable[[T], T]:
    """Register `trainer(job: TokenizerJob) -> held-out metrics` for `tokenizer.<stream>.kind=
    <kind>`, from any module imported before the run (`imports=[...]`): `stage=video_tokenizer`
    (or `audio_codec`) then trains that kind. The trainer exports the weights where
    `export_path(job, stream)` says, so that the kind's builder loads them."""
    if stream not in DEFAULT_KINDS:
        raise ValueError(f"stream must be one of {sorted(DEFAULT_KINDS)}, got {stream!r}")

    def add(trainer: T) -> T:
        TRAINERS[stream, kind] = trainer  # type: ignore[assignment]
        return trainer

    return add


def run_tokenizer_stage(cfg: DictConfig, stream: str) -> dict[str, float]:
    """Type the stage's config, then run the trainer registered for the tokenizer's kind."""
    job = TokenizerJob.from_cfg(cfg)
    kind = (job.tokenizer.get(stream) or {}).get("kind") or DEFAULT_KINDS[stream]
    if (stream, kind) not in TRAINERS:
        known = sorted(k for s, k in TRAINERS if s == stream)
        raise ConfigError(
            f"tokenizer.{stream}.kind={kind!r} has no trainer registered "
            f"(register_tokenizer_trainer); known: {known}"
        )
    _setup(job)
    return TRAINERS[stream, kind](job)


def train_video_tokenizer(cfg: DictConfig) -> dict[str, float]:
    """Stage entry (`stage=video_tokenizer`): train the video tokenizer kind the config names;
    export and measure it."""
    return run_tokenizer_stage(cfg, "video")


def train_audio_codec(cfg: DictConfig) -> dict[str, float]:
    """Stage entry (`stage=audio_codec`): train the audio codec kind the config names; export
    and measure it."""
    return run_tokenizer_stage(cfg, "audio")


@register_tokenizer_trainer("video", "vq")
def train_vq_video_tokenizer(job: TokenizerJob) -> dict[str, float]:
    """The VQ / FSQ video tokenizer on the manifest's clips."""
    s = job.stage
    vq_cfg = video_config(job)
    train_recs, val_recs = _records(job)
    read = dict(fps=vq_cfg.fps, size=vq_cfg.frame_size)
    k = vq_cfg.temporal_stride
    train_frames = FrameDataset.from_clips(
        decode_records(train_recs, **read, desc="decode train clips"), k
    )
    val_frames = FrameDataset.from_clips(
        decode_records(val_recs, **read, desc="decode val clips"), k
    )
    log.info("video tokenizer: %d train frames, %d val frames", len(train_frames), len(val_frames))

    tokenizer = VQVideoTokenizer(vq_cfg)
    module = VideoTokenizerModule(
        tokenizer,
        lr=s.lr,
        warmup_steps=s.warmup_steps,
        max_steps=s.max_steps,
        edge_weight=s.edge_weight,
    )
    bs = s.batch_size
    train_loader = DataLoader(
        train_frames, batch_size=bs, shuffle=True, drop_last=len(train_frames) > bs
    )
    val_loader = DataLoader(val_frames, batch_size=max(bs, 256 // k))
    _fit(job, module, train_loader, val_loader)
    frames = val_frames.flat_frames
    return save_and_measure(
        job, "video", tokenizer, lambda t: evaluate_video_tokenizer(t, frames), val_recs
    )


def audio_config(job: TokenizerJob) -> tuple[EncodecConfig, int]:
    """EnCodec architecture from `tokenizer.audio.model`; K from `tokenizer.audio.num_codebooks`."""
    a = job.tokenizer.get("audio") or {}
    model_cfg = dict(a.get("model") or {})
    k = int(a.get("num_codebooks") or 2)
    model_cfg.setdefault("sampling_rate", job.data.audio.sample_rate)
    try:
        config = EncodecConfig(**model_cfg)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tokenizer.audio.model: {exc}") from exc
    # One target bandwidth per codebook count up to K, so K codebooks exist and are selectable.
    per_codebook = config.codebook_size.bit_length() - 1
    config.target_bandwidths = [
        n * per_codebook * config.frame_rate / 1000 for n in range(1, k + 1)
    ]
    return config, k


@register_tokenizer_trainer("audio", "encodec")
def train_encodec_audio_codec(job: TokenizerJob) -> dict[str, float]:
    """A small EnCodec (transformers architecture) with our recipe."""
    s = job.stage
    if (job.tokenizer.get("audio") or {}).get("pretrained_dir"):
        raise ConfigError(
            "tokenizer.audio.pretrained_dir is set: that codec is pretrained, nothing to train"
        )
    config, k = audio_config(job)
    sr = config.sampling_rate
    train_recs, val_recs = _records(job)
    read = dict(sample_rate=sr, size=8, fps=job.data.video.fps)  # video unused: decode it tiny
    train_waves = [c.audio for c in decode_records(train_recs, **read, desc="decode train audio")]
    val_waves = [c.audio for c in decode_records(val_recs, **read, desc="decode val audio")]
    segment = int(s.segment_seconds * sr) // config.hop_length * config.hop_length

    codec = EncodecAudioTokenizer.from_config(config, num_codebooks=k)
    module = AudioCodecModule(
        codec,
        lr=s.lr,
        warmup_steps=s.warmup_steps,
        max_steps=s.max_steps,
        spectral_weight=s.spectral_weight,
        ema_decay=s.ema_decay,
    )
    train_ds = AudioSegmentDataset(train_waves, segment, random=True, repeats=s.segments_per_clip)
    val_ds = AudioSegmentDataset(val_waves, segment, random=False)
    train_loader = DataLoader(
        train_ds, batch_size=s.batch_size, shuffle=True, drop_last=len(train_ds) > s.batch_size
    )
    val_loader = DataLoader(val_ds, batch_size=s.batch_size)
    _fit(job, module, train_loader, val_loader)
    return save_and_measure(
        job, "audio", codec, lambda t: evaluate_audio_codec(t, val_waves), val_recs
    )
