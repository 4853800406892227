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
log-mel L1 1.11 (see the .metrics.json files).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from transformers import EncodecConfig

from vidchat.errors import ConfigError, VidchatError
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.checkpoint import metrics_path
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer
from vidchat.training.tokenizer_data import (
    AudioSegmentDataset,
    FrameDataset,
    decode_records,
    split_records,
)
from vidchat.training.tokenizer_eval import evaluate_audio_codec, evaluate_video_tokenizer
from vidchat.training.tokenizer_modules import AudioCodecModule, VideoTokenizerModule
from vidchat.utils.atomic import atomic_write_json

log = logging.getLogger("vidchat")


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _records(cfg: DictConfig) -> tuple[list[Any], list[Any]]:
    """(train, val) clip records: the manifest's own splits, else a hash split by clip id."""
    from vidchat.data.manifest import load_manifest

    manifest = load_manifest(cfg.data)
    train, val = manifest.records_for("train"), manifest.records_for("val")
    if not train or not val:
        train, val = split_records(manifest.records, float(cfg.stage.val_fraction))
    limit = cfg.stage.get("max_clips")
    if limit:
        train = train[: int(limit)]
    if not train:
        raise VidchatError(
            f"data={cfg.data.get('name', '?')}: the manifest lists no clips to train on"
        )
    return train, val


def _setup(cfg: DictConfig) -> None:
    torch.manual_seed(int(cfg.get("seed", 0)))
    if cfg.stage.get("torch_threads"):
        torch.set_num_threads(int(cfg.stage.torch_threads))


def _run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.output_dir) / "runs" / str(cfg.get("run_name") or cfg.stage.name)


def _fit(cfg: DictConfig, module, train_loader, val_loader) -> None:
    from vidchat.training.checkpoint_io import last_checkpoint
    from vidchat.training.trainer import build_trainer

    run_dir = _run_dir(cfg)
    trainer = build_trainer(cfg, max_steps=int(cfg.stage.max_steps), default_root_dir=run_dir)
    ckpt = last_checkpoint(run_dir) if cfg.get("resume") else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(ckpt) if ckpt else None)


def _export_path(cfg: DictConfig, key: str) -> str:
    """`stage.export` (default: under `paths.checkpoint_dir`, so a new run never overwrites the
    shipped demo tokenizers that the demo LM was trained on), else `<key>.checkpoint`."""
    path = cfg.stage.get("export") or OmegaConf.select(cfg, f"{key}.checkpoint")
    if not path:
        raise ConfigError("stage.export is not set: where should the trained weights go?")
    return str(path)


def video_config(cfg: DictConfig) -> VQVideoConfig:
    """Architecture from `tokenizer.video.model`, frame size/fps from the data config."""
    model_cfg = dict(_plain(cfg.tokenizer.video.get("model")) or {})
    model_cfg.setdefault("frame_size", int(cfg.data.video.size))
    model_cfg.setdefault("fps", float(cfg.data.video.fps))
    try:
        return VQVideoConfig(**model_cfg)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tokenizer.video.model: {exc}") from exc


def train_video_tokenizer(cfg: DictConfig) -> dict[str, float]:
    """Train the per-frame VQ video tokenizer on the manifest's clips; export + measure it."""
    _setup(cfg)
    s = cfg.stage
    vq_cfg = video_config(cfg)
    train_recs, val_recs = _records(cfg)
    read = dict(fps=vq_cfg.fps, size=vq_cfg.frame_size)
    train_frames = FrameDataset.from_clips(
        decode_records(train_recs, **read, desc="decode train clips")
    )
    val_frames = FrameDataset.from_clips(decode_records(val_recs, **read, desc="decode val clips"))
    log.info("video tokenizer: %d train frames, %d val frames", len(train_frames), len(val_frames))

    tokenizer = VQVideoTokenizer(vq_cfg)
    module = VideoTokenizerModule(
        tokenizer,
        lr=float(s.lr),
        warmup_steps=int(s.warmup_steps),
        max_steps=int(s.max_steps),
        edge_weight=float(s.edge_weight),
    )
    bs = int(s.batch_size)
    train_loader = DataLoader(
        train_frames, batch_size=bs, shuffle=True, drop_last=len(train_frames) > bs
    )
    val_loader = DataLoader(val_frames, batch_size=max(bs, 256))
    _fit(cfg, module, train_loader, val_loader)

    out = _export_path(cfg, "tokenizer.video")
    tokenizer.save(out, fp16=bool(s.fp16), extra={"trained_steps": int(s.max_steps)})
    reloaded = VQVideoTokenizer.load(out).eval()
    metrics = evaluate_video_tokenizer(reloaded, val_frames.frames.numpy())
    atomic_write_json(
        metrics_path(out), {"held_out": metrics, "val_clips": [r.clip_id for r in val_recs]},
        indent=2,
        sort_keys=True,
    )
    log.info("video tokenizer saved to %s: %s", out, metrics)
    print(f"video tokenizer -> {out}: {metrics}")
    return metrics


def audio_config(cfg: DictConfig) -> tuple[EncodecConfig, int]:
    """EnCodec architecture from `tokenizer.audio.model`; K from `tokenizer.audio.num_codebooks`."""
    a = cfg.tokenizer.audio
    model_cfg = dict(_plain(a.get("model")) or {})
    k = int(a.get("num_codebooks") or 2)
    model_cfg.setdefault("sampling_rate", int(cfg.data.audio.sample_rate))
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


def train_audio_codec(cfg: DictConfig) -> dict[str, float]:
    """Train a small EnCodec (transformers architecture) with our recipe; export + measure it."""
    _setup(cfg)
    s = cfg.stage
    if cfg.tokenizer.audio.get("pretrained_dir"):
        raise ConfigError(
            "tokenizer.audio.pretrained_dir is set: that codec is pretrained, nothing to train"
        )
    config, k = audio_config(cfg)
    sr = config.sampling_rate
    train_recs, val_recs = _records(cfg)
    read = dict(
        sample_rate=sr, size=8, fps=float(cfg.data.video.fps)
    )  # video unused: decode it tiny
    train_waves = [c.audio for c in decode_records(train_recs, **read, desc="decode train audio")]
    val_waves = [c.audio for c in decode_records(val_recs, **read, desc="decode val audio")]
    segment = int(float(s.segment_seconds) * sr) // config.hop_length * config.hop_length

    codec = EncodecAudioTokenizer.from_config(config, num_codebooks=k)
    module = AudioCodecModule(
        codec,
        lr=float(s.lr),
        warmup_steps=int(s.warmup_steps),
        max_steps=int(s.max_steps),
        spectral_weight=float(s.spectral_weight),
        ema_decay=float(s.ema_decay),
    )
    bs = int(s.batch_size)
    train_ds = AudioSegmentDataset(
        train_waves, segment, random=True, repeats=int(s.segments_per_clip)
    )
    val_ds = AudioSegmentDataset(val_waves, segment, random=False)
    train_loader = DataLoader(train_ds, batch_size=bs, shuffle=True, drop_last=len(train_ds) > bs)
    val_loader = DataLoader(val_ds, batch_size=bs)
    _fit(cfg, module, train_loader, val_loader)

    out = _export_path(cfg, "tokenizer.audio")
    codec.save(out, fp16=bool(s.fp16), extra={"trained_steps": int(s.max_steps)})
    reloaded = EncodecAudioTokenizer.load(out).eval()
    metrics = evaluate_audio_codec(reloaded, val_waves)
    atomic_write_json(
        metrics_path(out), {"held_out": metrics, "val_clips": [r.clip_id for r in val_recs]},
        indent=2,
        sort_keys=True,
    )
    log.info("audio codec saved to %s: %s", out, metrics)
    print(f"audio codec -> {out}: {metrics}")
    return metrics
