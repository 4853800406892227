"""What every tokenizer trainer shares: the typed job, its clips, the fit, the export, and the
registry of trainers by tokenizer kind (`register_tokenizer_trainer`).

A trainer is `trainer(job: TokenizerJob) -> held-out metrics`, registered for
`tokenizer.<stream>.kind=<kind>` from any module imported before the run (`imports=[...]`);
`stage=video_tokenizer` / `stage=audio_codec` (`vidchat.training.tokenizers.stages`) run the one
registered for the config's kind. A trainer reads its clips with `records`, fits with `fit`
(Lightning, resumable), and exports with `save_and_measure` to `export_path(job, stream)`, where
the kind's builder (`vidchat.tokenizers.build`) loads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

import vidchat.training.safe_load as safe_load
from vidchat.data.config import DataConfig
from vidchat.errors import ConfigError, VidchatError
from vidchat.tokenizers.checkpoint import metrics_path
from vidchat.training.config import LM_ONLY_KEYS, RunConfig, TokenizerStageConfig
from vidchat.training.tokenizers.data import split_records
from vidchat.utils.atomic import atomic_write_json
from vidchat.utils.config import to_plain
from vidchat.utils.typed import from_node

log = logging.getLogger("vidchat")
T = TypeVar("T")
M = TypeVar("M", bound=torch.nn.Module)


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


def records(job: TokenizerJob) -> tuple[list[Any], list[Any]]:
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


def setup(job: TokenizerJob) -> None:
    torch.manual_seed(job.run.seed)
    if job.stage.torch_threads:
        torch.set_num_threads(job.stage.torch_threads)


def fit(job: TokenizerJob, module, train_loader, val_loader) -> None:
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


def fit_batches(job: TokenizerJob, module, train: Dataset, val_loader: DataLoader) -> None:
    """`fit` on `train` shuffled in batches of `stage.batch_size` (a last, short batch dropped
    when there is more than one batch)."""
    bs = job.stage.batch_size
    fit(job, module, DataLoader(train, bs, shuffle=True, drop_last=len(train) > bs), val_loader)


def video_model_config(job: TokenizerJob, config_class: type[T]) -> T:
    """`config_class` from `tokenizer.video.model`, its frame size and fps defaulting to the
    data config's; a bad key or value is one `ConfigError`."""
    model_cfg = dict((job.tokenizer.get("video") or {}).get("model") or {})
    model_cfg.setdefault("frame_size", job.data.video.size)
    model_cfg.setdefault("fps", job.data.video.fps)
    try:
        return config_class(**model_cfg)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tokenizer.video.model: {exc}") from exc


def start_from(job: TokenizerJob, tokenizer: M) -> M:
    """The tokenizer a run trains: `tokenizer` itself, or with `stage.init_from` set, that
    checkpoint's weights, whose config must be the run's (a difference is one `ConfigError`).

    With `stage.freeze` naming what makes the codes, a run that starts here changes only what
    reads them (a renderer, a decoder), so the codes and every LM trained on them stay valid."""
    stem = job.stage.init_from
    if not stem:
        return tokenizer
    start = type(tokenizer).load(stem)
    if start.cfg != tokenizer.cfg:
        ours, theirs = asdict(tokenizer.cfg), asdict(start.cfg)
        key = next(k for k in ours if ours[k] != theirs.get(k))
        raise ConfigError(
            f"stage.init_from={stem} was trained with {key}={theirs.get(key)!r}, "
            f"this run's tokenizer has {key}={ours[key]!r}"
        )
    return start


def save_and_measure(job: TokenizerJob, which: str, tokenizer, measure, val_recs) -> dict:
    """Export the trained weights, reload them and record their held-out quality next to them."""
    out = export_path(job, which)
    s = job.stage
    started = s.init_from or s.freeze  # a fine-tune: where it started, what it kept
    history = {"init_from": s.init_from, "frozen": list(s.freeze)} if started else {}
    tokenizer.save(out, fp16=s.fp16, extra={"trained_steps": s.max_steps, **history})
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
