"""Build a `lightning.Trainer` from the typed `trainer` and `logger` configs (configs/trainer, configs/logger).

Every training stage (tokenizers, pretrain, SFT) goes through `build_trainer`, so devices,
precision, distribution, logging and checkpointing are chosen by config in one place:

- `precision: auto` = bf16-mixed on a GPU that supports it, else 32-true.
- `devices: auto` with `strategy: ddp|deepspeed` and no GPU = 2 CPU processes (gloo), so
  `trainer=ddp` / `trainer=deepspeed_zero2` run on a laptop and in tests.
- `strategy: deepspeed` = Lightning's `DeepSpeedStrategy` on GPUs and `CPUDeepSpeedStrategy`
  (vidchat/training/deepspeed_cpu.py) without one.
- A `ModelCheckpoint` saves `<default_root_dir>/ckpt/last.ckpt` (+ `step*.ckpt`) every
  `trainer.checkpoint_every_n_steps` optimizer steps, written atomically (`AtomicCheckpointIO`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar, TQDMProgressBar

from vidchat.errors import ConfigError
from vidchat.training.checkpoint_io import (
    LAST_NAME,
    AtomicCheckpointIO,
    StepCheckpoint,
    checkpoint_dir,
)
from vidchat.training.config import RunConfig, TrainerConfig
from vidchat.training.run_dir import (
    TrimLogOnResume,
    carry_log,
    csv_version,
    remove_stale_temps,
)
from vidchat.utils.config import to_plain

log = logging.getLogger("vidchat")

LOGGER_TYPES = ("csv", "tensorboard", "wandb", "none")
DISTRIBUTED_STRATEGIES = (
    "ddp",
    "ddp_spawn",
    "ddp_find_unused_parameters_true",
    "deepspeed",
    "fsdp",
)
CPU_PROCESSES_FOR_AUTO = 2


def resolve_accelerator(tcfg: TrainerConfig) -> str:
    """`auto` -> `gpu` when CUDA is available, else `cpu`; `cuda` is treated as `gpu`."""
    acc = str(tcfg.get("accelerator", "auto"))
    if acc == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if acc == "cuda":
        return "gpu"
    if acc not in ("cpu", "gpu", "mps"):
        raise ConfigError(f"trainer.accelerator must be cpu, gpu, mps or auto, got {acc!r}")
    if acc == "gpu" and not torch.cuda.is_available():
        raise ConfigError(
            "trainer.accelerator=gpu but no CUDA GPU is visible; use trainer=cpu (or trainer.accelerator=cpu)"
        )
    return acc


def resolve_devices(tcfg: TrainerConfig, accelerator: str) -> int | str | list[int]:
    """`auto` with a distributed strategy on CPU -> 2 processes; otherwise passed to Lightning."""
    devices = to_plain(tcfg.get("devices", 1))
    strategy = str(tcfg.get("strategy", "auto"))
    if devices == "auto" and accelerator == "cpu":
        return CPU_PROCESSES_FOR_AUTO if strategy in DISTRIBUTED_STRATEGIES else 1
    return devices


def resolve_precision(tcfg: TrainerConfig, accelerator: str) -> str:
    """`auto` -> bf16-mixed on a bf16-capable GPU, else 32-true."""
    precision = str(tcfg.get("precision", "32-true"))
    if precision != "auto":
        return precision
    if accelerator == "gpu" and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def deepspeed_config(ds_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The DeepSpeed JSON config for `trainer.deepspeed` (stage, offload flags, extra keys)."""
    ds_cfg = dict(to_plain(ds_cfg) or {})
    unknown = set(ds_cfg) - {"stage", "offload_optimizer", "offload_parameters", "extra"}
    if unknown:
        raise ConfigError(f"trainer.deepspeed has unknown key(s) {sorted(unknown)}")
    stage = int(ds_cfg.get("stage", 2))
    if stage not in (1, 2, 3):
        raise ConfigError(f"trainer.deepspeed.stage must be 1, 2 or 3, got {stage}")
    zero: dict[str, Any] = {"stage": stage, "contiguous_gradients": True, "overlap_comm": False}
    if ds_cfg.get("offload_optimizer"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if ds_cfg.get("offload_parameters"):
        if stage != 3:
            raise ConfigError(
                "trainer.deepspeed.offload_parameters needs trainer.deepspeed.stage=3"
            )
        zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    config: dict[str, Any] = {
        "zero_optimization": zero,
        # The LightningModule's torch AdamW is used even with offload (no compiled CPU-Adam op needed).
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
    }
    for key, value in (ds_cfg.get("extra") or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def build_strategy(tcfg: TrainerConfig, accelerator: str) -> Any:
    """The Lightning strategy for `trainer.strategy` (a name, or a DeepSpeed strategy object)."""
    name = str(tcfg.get("strategy", "auto"))
    if name != "deepspeed":
        return name
    config = deepspeed_config(tcfg.get("deepspeed"))
    if accelerator == "cpu":
        from vidchat.training.deepspeed_cpu import CPUDeepSpeedStrategy

        return CPUDeepSpeedStrategy(config=config)
    from vidchat.training.deepspeed_cpu import SafeDeepSpeedStrategy

    return SafeDeepSpeedStrategy(config=config)


def build_logger(
    lcfg: Mapping[str, Any] | None, root_dir: Path, run_name: str | None, resume: bool = False
) -> Any:
    """A Lightning logger for `cfg.logger` (csv, tensorboard, wandb offline, none) or False; a
    resumed run's CSV log continues in the newest version folder."""
    lcfg = dict(to_plain(lcfg) or {"type": "csv"})
    kind = str(lcfg.pop("type", "csv"))
    save_dir = str(lcfg.pop("save_dir", None) or root_dir)
    if kind == "none":
        return False
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        version = csv_version(Path(save_dir), "csv", resume)
        logger = CSVLogger(save_dir=save_dir, name="csv", version=version)
        return carry_log(logger) if version is not None else logger
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=save_dir, name="tensorboard")
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        mode = str(lcfg.pop("mode", None) or os.environ.get("WANDB_MODE", "offline"))
        if mode not in ("online", "offline", "disabled"):
            raise ConfigError(f"logger.mode must be online, offline or disabled, got {mode!r}")
        return WandbLogger(
            project=lcfg.pop("project", "vidchat"),
            entity=lcfg.pop("entity", None),
            name=run_name,
            save_dir=save_dir,
            mode=mode,
            tags=list(lcfg.pop("tags", []) or []),
        )
    raise ConfigError(f"logger.type must be one of {', '.join(LOGGER_TYPES)}, got {kind!r}")


def build_checkpoint_callback(tcfg: TrainerConfig, root_dir: Path) -> StepCheckpoint | None:
    """Save `ckpt/last.ckpt` and `ckpt/step<N>.ckpt` every `checkpoint_every_n_steps` steps."""
    every = int(tcfg.get("checkpoint_every_n_steps") or 0)
    if every <= 0:
        return None
    ckpt = StepCheckpoint(
        dirpath=str(checkpoint_dir(root_dir)),
        filename="step{step:07d}",
        auto_insert_metric_name=False,
        every_n_train_steps=every,
        save_last=True,
        monitor="step",
        mode="max",
        save_top_k=int(tcfg.get("save_top_k", 2)),
        enable_version_counter=False,  # a resumed run rewrites a step's file, never adds -v1
    )
    ckpt.CHECKPOINT_NAME_LAST = LAST_NAME.removesuffix(".ckpt")
    return ckpt


def _with_default_callbacks(callbacks: list[Callback], tcfg: TrainerConfig, root: Path):
    """The caller's callbacks + log trimming on resume, step checkpoints and a progress bar
    (unless the caller brought its own)."""
    callbacks.append(TrimLogOnResume())
    if not any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
        ckpt = build_checkpoint_callback(tcfg, root)
        if ckpt is not None:
            callbacks.append(ckpt)
    if tcfg.get("enable_progress_bar", True) and not any(
        isinstance(cb, ProgressBar) for cb in callbacks
    ):
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    return callbacks


def build_trainer(
    run: RunConfig,
    *,
    max_steps: int,
    callbacks: list[Callback] | None = None,
    default_root_dir: str | os.PathLike,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """A `lightning.Trainer` for `max_steps` optimizer steps, configured by `run.trainer` and
    `run.logger` (make `run` with `RunConfig.from_cfg(cfg, stage_name)` at the entry point).

    `default_root_dir` receives logs and `ckpt/` (resume with `last_checkpoint(default_root_dir)`).
    Extra keyword arguments go straight to `lightning.Trainer` (e.g. `use_distributed_sampler`).
    """
    tcfg = run.trainer
    root = Path(default_root_dir)
    root.mkdir(parents=True, exist_ok=True)
    accelerator = resolve_accelerator(tcfg)
    strategy = build_strategy(tcfg, accelerator)
    remove_stale_temps(checkpoint_dir(root))  # left by a run killed mid-write
    callbacks = _with_default_callbacks(list(callbacks or []), tcfg, root)
    # DeepSpeed writes its own sharded checkpoint folders; every other strategy uses our atomic IO.
    plugins = [] if str(tcfg.get("strategy")) == "deepspeed" else [AtomicCheckpointIO()]
    accumulate = int(tcfg.get("accumulate_grad_batches", 1))
    val_interval = tcfg.get("val_check_interval")
    if isinstance(val_interval, int):  # optimizer steps in our config; Lightning counts batches
        val_interval *= accumulate
    kwargs: dict[str, Any] = dict(
        accelerator=accelerator,
        devices=resolve_devices(tcfg, accelerator),
        num_nodes=int(tcfg.get("num_nodes", 1)),
        strategy=strategy,
        precision=resolve_precision(tcfg, accelerator),
        max_steps=int(max_steps),
        max_epochs=-1,
        accumulate_grad_batches=accumulate,
        gradient_clip_val=tcfg.get("gradient_clip_val"),
        log_every_n_steps=int(tcfg.get("log_every_n_steps", 10)),
        val_check_interval=val_interval,
        check_val_every_n_epoch=None if isinstance(val_interval, int) else 1,
        limit_val_batches=tcfg.get("limit_val_batches", 1.0),
        num_sanity_val_steps=int(tcfg.get("num_sanity_val_steps", 0)),
        deterministic=bool(tcfg.get("deterministic", False)),
        enable_progress_bar=bool(tcfg.get("enable_progress_bar", True)),
        enable_checkpointing=any(isinstance(cb, ModelCheckpoint) for cb in callbacks),
        enable_model_summary=False,
        default_root_dir=str(root),
        logger=build_logger(run.logger, root, run.run_name, resume=run.resume),
        callbacks=callbacks,
        plugins=plugins,
    )
    kwargs.update(trainer_kwargs)
    return L.Trainer(**kwargs)
