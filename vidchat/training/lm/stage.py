"""`python train.py stage=pretrain|sft`: train the LM on token shards, export, report val loss.

- pretrain: `single` branch (reference + the speaker's own clip as the responder segment, loss
  after the reference) and `listening` branch (partner audio/video -> the listener's silent
  turn, loss on the listener) — `stage.branches` / `stage.loss_modes`.
- sft: `dialogue` + `multi_turn` pairs, loss on the responder's tokens only, initialised from
  `stage.init_from` (`auto`: `${paths.checkpoint_dir}/pretrain/lm`, else the demo LM
  `${paths.demo_checkpoint_dir}/lm`, else a one-line error).

Shards missing for the configured data + tokenizer are written first (`stage=tokenize`).
Writes under `${paths.checkpoint_dir}/<stage.name>/`: `ckpt/` (resumable, `resume=true`),
`lm.safetensors` + `lm.json` (consolidated, see vidchat/model/checkpoint.py), `metrics.json` and
`val_curve.csv` (held-out loss per validation next to a unigram baseline).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch

import vidchat.training.safe_load as safe_load
from vidchat.data.datamodule import LMDataModule
from vidchat.data.lm_dataset import LMCollator
from vidchat.errors import ConfigError, VidchatError
from vidchat.model import SequenceLayout, build_model
from vidchat.model.checkpoint import export_consolidated, load_consolidated, stem_of
from vidchat.training.callbacks import ThroughputMonitor
from vidchat.training.checkpoint_io import LAST_NAME, checkpoint_dir, last_checkpoint
from vidchat.training.config import (
    LMJob,
    LMStageConfig,
    PathsConfig,
    RunConfig,
)
from vidchat.training.lm.data import LMData, is_main_process, prepare_data, unigram_baseline
from vidchat.training.lm.export import export_from_checkpoint
from vidchat.training.lm.module import LMTrainingModule
from vidchat.training.lm.runtime import apply_runtime, loss_chunk
from vidchat.training.trainer import build_trainer

log = logging.getLogger("vidchat")

EXPORT_STEM = "lm"


# ---- model initialisation ----------------------------------------------------------------------
def resolve_init(stage: LMStageConfig, paths: PathsConfig, run_name: str = "") -> Path | None:
    """`stage.init_from`: null (from scratch), `auto`, or a path. `auto` takes the pretrain run
    that goes with this one (`sft-debug` follows `pretrain-debug`: a debug SFT once started
    from the shipped demo LM without a word), else `pretrain`, else the demo LM, with a
    warning when it comes to the demo LM."""
    init = stage.init_from
    if init is None:
        return None
    if init != "auto":
        path = stem_of(init)
        if not path.with_suffix(".json").is_file():
            raise VidchatError(
                f"stage.init_from={init}: no consolidated LM checkpoint at {path}.json"
            )
        return path
    suffix = run_name.removeprefix(stage.name) if run_name.startswith(stage.name) else ""
    runs = dict.fromkeys([f"pretrain{suffix}", "pretrain"])  # ordered, without a repeat
    candidates = [
        *(stem_of(Path(paths.checkpoint_dir) / r / EXPORT_STEM) for r in runs),
        stem_of(Path(paths.demo_checkpoint_dir) / EXPORT_STEM),
    ]
    for path in candidates:
        if path.with_suffix(".json").is_file():
            if path == candidates[-1]:
                log.warning(
                    "stage %s starts from the shipped demo LM %s: no pretrain run at %s",
                    stage.name,
                    path,
                    " or ".join(str(c) for c in candidates[:-1]),
                )
            return path
    raise VidchatError(
        f"stage {stage.name} starts from a pretrained LM but found none at "
        f"{' or '.join(str(c) + '.json' for c in candidates)}; run `python train.py stage=pretrain` first"
    )


def build_lm(job: LMJob, run: RunConfig, layout: SequenceLayout) -> torch.nn.Module:
    """The LM to train: fresh (`build_model`) or from `stage.init_from`, with the runtime
    settings `model.grad_checkpointing` and `model.compile` applied (`model.loss_chunk` is the
    training module's, `_module_and_data`)."""
    init = resolve_init(job.stage, run.paths, run.run_name)
    if init is None:
        model = build_model(job.model, layout)
    else:
        model, init_layout, _ = load_consolidated(init)
        if init_layout.cfg != layout.cfg:
            raise ConfigError(
                f"{init}.json was trained with another token layout ({init_layout.cfg}) than "
                f"the shards ({layout.cfg}); use matching tokenizer/model.layout or "
                "stage.init_from=null"
            )
        log.info("initialised from %s", init)
        model = model.float().train()
    return apply_runtime(model, job.model)


def _set_aside(root: Path) -> Path | None:
    """A fresh run replaces the previous run's resumable checkpoints, but deletes nothing until
    it has finished: `ckpt/` moves to `ckpt.previous/` (an older set-aside one goes), and
    `_put_back` or `_discard` settle it when the run ends."""
    ckpts = checkpoint_dir(root)
    aside = ckpts.with_name(ckpts.name + ".previous")
    if not is_main_process() or not ckpts.exists():
        return None
    if aside.exists():
        shutil.rmtree(aside)
    log.info("resume=false: %s set aside as %s until this run finishes", ckpts, aside)
    ckpts.rename(aside)
    return aside


def _put_back(root: Path, aside: Path | None) -> None:
    """A fresh run failed: when it wrote no checkpoint of its own, the previous run's go back
    to `ckpt/` (so `resume=true` finds them); else both stay and the log says where."""
    if aside is None or not aside.exists():
        return
    ckpts = checkpoint_dir(root)
    if not ckpts.exists() or not any(ckpts.iterdir()):
        if ckpts.exists():
            ckpts.rmdir()
        aside.rename(ckpts)
    else:
        log.warning("the previous run's checkpoints are kept in %s", aside)


def _discard(aside: Path | None) -> None:
    if aside is not None and aside.exists():
        shutil.rmtree(aside)


def write_report(
    root: Path, module: LMTrainingModule, baseline: dict[str, float], extra: dict[str, Any]
) -> dict[str, Any]:
    """`metrics.json` (final numbers) and `val_curve.csv` (one row per validation)."""
    history = module.val_history
    final = history[-1] if history else {}
    report = {
        **extra,
        "val_loss": final.get("loss"),
        "val_video_loss": final.get("video_loss"),
        "val_audio_loss": final.get("audio_loss"),
        **baseline,
        "val_curve": history,
    }
    (root / "metrics.json").write_text(json.dumps(report, indent=2))
    with open(root / "val_curve.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "val_loss", "val_video_loss", "val_audio_loss", "unigram_val_loss"])
        for row in history:
            w.writerow(
                [
                    int(row["step"]),
                    f"{row['loss']:.4f}",
                    f"{row['video_loss']:.4f}",
                    f"{row['audio_loss']:.4f}",
                    f"{baseline['unigram_loss']:.4f}",
                ]
            )
    return report


def _resume_point(run: RunConfig, root: Path) -> tuple[Path | None, Path | None]:
    """(the checkpoint to resume from, where a fresh run set the previous run's aside)."""
    resume_from = last_checkpoint(root) if run.resume else None
    if run.resume and resume_from is None:
        log.warning("resume=true but %s has no %s: starting fresh", checkpoint_dir(root), LAST_NAME)
    return resume_from, (_set_aside(root) if resume_from is None else None)


def _module_and_data(
    job: LMJob, run: RunConfig, data: LMData
) -> tuple[LMTrainingModule, LMDataModule]:
    stage, chunk = job.stage, loss_chunk(job.model)  # a bad value fails before the build
    module = LMTrainingModule(
        build_lm(job, run, data.layout),  # a resumed run then loads its own weights over these
        data.layout,
        optim=stage.optim,
        noise=stage.noise,
        total_steps=stage.max_steps,
        seed=run.seed,
        turn_start_weight=stage.turn_start_weight,
        loss_chunk=chunk,
        meta=data.meta,
    )
    dm = LMDataModule(
        data.train,
        data.val if len(data.val) else None,
        batch_size=stage.batch_size,
        collator=LMCollator(stage.batching, data.train.max_seq_len),
        total_micro_batches=stage.max_steps * run.trainer.accumulate_grad_batches,
        seed=run.seed,
        num_workers=stage.num_workers,
    )
    return module, dm


def train_lm(job: LMJob, run: RunConfig) -> dict[str, Any]:
    """Train, then write the resumable checkpoint, the consolidated export and the report."""
    stage = job.stage
    L.seed_everything(run.seed, workers=True, verbose=False)
    data = prepare_data(job)
    root = run.checkpoint_root()
    resume_from, aside = _resume_point(run, root)
    try:
        module, dm = _module_and_data(job, run, data)
        throughput = ThroughputMonitor(peak_tflops=stage.peak_tflops)
        trainer = build_trainer(
            run,
            max_steps=stage.max_steps,
            callbacks=[throughput],
            default_root_dir=root,
            use_distributed_sampler=False,
        )
        safe_load.fit(
            trainer, module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None
        )
        # Final state: a resumable checkpoint (all ranks take part under DeepSpeed), then the
        # export.
        last = checkpoint_dir(root) / LAST_NAME
        trainer.save_checkpoint(str(last), weights_only=False)  # with the optimiser: resumable
        trainer.strategy.barrier()
    except BaseException:
        _put_back(root, aside)
        raise
    _discard(aside)
    if len(data.val) and (
        not module.val_history or module.val_history[-1]["step"] != trainer.global_step
    ):
        trainer.validate(module, datamodule=dm, verbose=False)  # the final held-out loss
    if not trainer.is_global_zero:
        return {}
    stem = root / EXPORT_STEM
    if run.trainer.strategy == "deepspeed":
        export_from_checkpoint(last, stem)
    else:
        meta = {**data.meta, "step": int(trainer.global_step)}
        export_consolidated(module.model, data.layout, stem, meta=meta)
    return _report(stage, root, module, data, stem, int(trainer.global_step), throughput.totals())


def _report(
    stage: LMStageConfig,
    root: Path,
    module: LMTrainingModule,
    data: LMData,
    stem: Path,
    step: int,
    throughput: dict[str, Any],
) -> dict[str, Any]:
    baseline = unigram_baseline(data.train, data.val, data.layout.vocab.size)
    report = write_report(
        root,
        module,
        baseline,
        {
            "stage": stage.name,
            "step": step,
            "checkpoint": str(stem),
            "params": int(module.model.num_params()),
            **throughput,
            "train_examples": len(data.train),
            "val_examples": len(data.val),
        },
    )
    vl, ul = report["val_loss"], report["unigram_loss"]
    if vl is not None and math.isfinite(vl):
        log.info(
            "%s: val loss %.3f nats/token vs unigram baseline %.3f (%s)",
            stage.name,
            vl,
            ul,
            root / "metrics.json",
        )
        print(
            f"[{stage.name}] step {step}: val loss {vl:.3f} vs unigram {ul:.3f} "
            f"-> {stem}.safetensors, {root / 'metrics.json'}"
        )
    return report
