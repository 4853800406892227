"""Stage entries that train the tokenizers: `python train.py stage=video_tokenizer|audio_codec`.

Each stage decodes the manifest's clips once (cached in memory), trains with Lightning via
`vidchat.training.trainer.build_trainer`, exports the weights to the checkpoint the tokenizer config
names (`tokenizer.video.checkpoint` / `tokenizer.audio.checkpoint`), reloads that export and records
its held-out reconstruction quality in `<stem>.metrics.json` next to the weights.

Weights go to `stage.export` (default `checkpoints/tokenizers/<tokenizer.name>`, where a tokenizer
config that is not shipped, such as `tokenizer=motion`, reads them); point other configs at
them with `tokenizer.video.checkpoint=...` / `tokenizer.audio.checkpoint=...`. The demo
checkpoints under checkpoints/demo/ were made with (data=demo, tokenizer=demo defaults):
    python train.py stage=video_tokenizer stage.torch_threads=1 stage.export=checkpoints/demo/video_tokenizer
    python train.py stage=audio_codec stage.torch_threads=1 stage.export=checkpoints/demo/audio_codec
held-out results: video PSNR 34.4 dB, 88% of 1024 codes used; audio envelope correlation 0.97,
log-mel L1 1.11 (see the .metrics.json files). The 64 px recipe: `experiment=demo64`.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig
from torch.utils.data import DataLoader
from transformers import EncodecConfig

import vidchat.training.tokenizers.motion  # noqa: F401 - registers the motion kind's trainer
from vidchat.errors import ConfigError
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer
from vidchat.training.tokenizers.data import AudioSegmentDataset, FrameDataset, decode_records
from vidchat.training.tokenizers.evaluate import evaluate_audio_codec, evaluate_video_tokenizer
from vidchat.training.tokenizers.job import (
    DEFAULT_KINDS,
    TRAINERS,
    TokenizerJob,
    export_path,
    fit_batches,
    records,
    register_tokenizer_trainer,
    save_and_measure,
    setup,
    start_from,
    video_model_config,
)
from vidchat.training.tokenizers.modules import AudioCodecModule, VideoTokenizerModule

log = logging.getLogger("vidchat")
__all__ = [
    "export_path",
    "register_tokenizer_trainer",
    "train_audio_codec",
    "train_video_tokenizer",
]


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
    setup(job)
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
    vq_cfg = video_model_config(job, VQVideoConfig)
    tokenizer = start_from(job, VQVideoTokenizer(vq_cfg))  # a bad init_from or freeze fails
    module = VideoTokenizerModule.for_stage(tokenizer, s)  # here, before the decoding
    train_recs, val_recs = records(job)
    read = dict(fps=vq_cfg.fps, size=vq_cfg.frame_size)
    k = vq_cfg.temporal_stride
    train_frames = FrameDataset.from_clips(
        decode_records(train_recs, **read, desc="decode train clips"), k
    )
    val_frames = FrameDataset.from_clips(
        decode_records(val_recs, **read, desc="decode val clips"), k
    )
    log.info("video tokenizer: %d train frames, %d val frames", len(train_frames), len(val_frames))

    fit_batches(job, module, train_frames, DataLoader(val_frames, max(s.batch_size, 256 // k)))
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
    train_recs, val_recs = records(job)
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
    fit_batches(job, module, train_ds, DataLoader(val_ds, batch_size=s.batch_size))
    return save_and_measure(
        job, "audio", codec, lambda t: evaluate_audio_codec(t, val_waves), val_recs
    )
