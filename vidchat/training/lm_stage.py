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

import copy
import csv
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from vidchat.data.datamodule import LMDataModule
from vidchat.data.lm_dataset import (
    LMCollator,
    LMExample,
    LMSequenceDataset,
    pair_examples,
    reference_picker,
    single_examples,
)
from vidchat.errors import ConfigError, VidchatError
from vidchat.model import Modality, SequenceLayout, build_layout, build_model
from vidchat.model.checkpoint import export_consolidated, load_consolidated, stem_of
from vidchat.training.callbacks import ThroughputMonitor
from vidchat.training.checkpoint_io import LAST_NAME, checkpoint_dir, last_checkpoint
from vidchat.training.export import export_from_checkpoint
from vidchat.training.lm_module import LMTrainingModule
from vidchat.training.noise import parse_noise
from vidchat.training.optim import OptimConfig
from vidchat.training.trainer import build_trainer
from vidchat.utils.paths import CONFIG_DIR

log = logging.getLogger("vidchat")

EXPORT_STEM = "lm"
TOKENIZED_MARKER = ".tokenized"
PAIR_BRANCHES = ("dialogue", "listening", "multi_turn")


def _is_main_process() -> bool:
    """True outside the worker processes that Lightning/torchrun start (LOCAL_RANK > 0)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("RANK", "0")) == 0


def run_dir(cfg: DictConfig) -> Path:
    """`${paths.checkpoint_dir}/<run_name>` (run_name defaults to the stage name)."""
    return Path(cfg.paths.checkpoint_dir) / str(cfg.get("run_name") or cfg.stage.name)


# ---- data --------------------------------------------------------------------------------------
def ensure_shards(cfg: DictConfig, wait_s: float = 4 * 3600):
    """A `ShardReader` for `shard_dir(cfg)`, running the tokenize stage first when it is missing.

    Only the main process tokenizes; other ranks (torchrun starts them together) wait for the
    marker file it writes when done.
    """
    from vidchat.data.shards import META_NAME, ShardReader
    from vidchat.training.tokenize import shard_dir

    root = shard_dir(cfg)
    marker = root / TOKENIZED_MARKER
    if not (root / META_NAME).is_file():
        if _is_main_process():
            log.info("no token shards in %s: running stage=tokenize first", root)
            from vidchat.training.tokenize import tokenize

            tok_cfg = OmegaConf.load(CONFIG_DIR / "stage" / "tokenize.yaml")
            full = copy.deepcopy(cfg)
            with open_dict(full):
                full.stage = tok_cfg
            tokenize(full)
            marker.write_text("written by the LM stage after stage=tokenize finished\n")
        else:
            deadline = time.monotonic() + wait_s
            while not marker.is_file():
                if time.monotonic() > deadline:
                    raise VidchatError(
                        f"{root}: no token shards; run `python train.py stage=tokenize` first"
                    )
                time.sleep(5)
    return ShardReader(root)


def layout_from_shards(reader: Any, cfg: DictConfig) -> SequenceLayout:
    """The sequence layout for the tokenizer specs recorded in the shards."""
    meta = reader.meta
    if "video_spec" not in meta or "audio_spec" not in meta:
        raise VidchatError(
            f"{reader.roots[0]}/meta.json has no tokenizer specs; re-run stage=tokenize"
        )
    video, audio = SimpleNamespace(**meta["video_spec"]), SimpleNamespace(**meta["audio_spec"])
    return build_layout(video, audio, cfg.model.get("layout"))


def build_examples(stage: DictConfig, manifest: Any, split: str) -> list[LMExample]:
    """Examples of `stage.branches` in `split`, each with its branch's loss mode."""
    branches = list(stage.branches)
    loss_modes = dict(stage.loss_modes)
    unknown = sorted(set(branches) - {"single", *PAIR_BRANCHES})
    if unknown:
        raise ConfigError(
            f"stage.branches has unknown branch(es) {unknown}; known: single, {', '.join(PAIR_BRANCHES)}"
        )
    missing = sorted(set(branches) - set(loss_modes))
    if missing:
        raise ConfigError(f"stage.loss_modes has no entry for branch(es) {missing}")
    refs = reference_picker(manifest.records)
    out: list[LMExample] = []
    if "single" in branches:
        records = [
            r for r in manifest.records_for(split, talking_only=True) if r.branch == "single"
        ]
        out += single_examples(records, refs, loss_modes["single"])
    pair_branches = [b for b in branches if b in PAIR_BRANCHES]
    if pair_branches:
        pairs = [p for p in manifest.pairs_for(split, pair_branches) if p.responder is not None]
        for branch in pair_branches:
            out += pair_examples([p for p in pairs if p.branch == branch], refs, loss_modes[branch])
    return out


def _clips_of(ex: LMExample) -> set[str]:
    ids = {cid for _, cid in ex.segments}
    if ex.ref is not None:
        ids |= {ex.ref.clip_id, ex.ref.fallback}
    return ids


def _available(examples: list[LMExample], reader: Any, what: str) -> list[LMExample]:
    kept = [ex for ex in examples if all(c in reader for c in _clips_of(ex))]
    if len(kept) < len(examples):
        log.warning("%s: %d of %d examples dropped (clips missing from the token shards)",
                    what, len(examples) - len(kept), len(examples))  # fmt: skip
    return kept


def _subsample(examples: list[LMExample], limit: Any, seed: int) -> list[LMExample]:
    if limit is None or len(examples) <= int(limit):
        return examples
    g = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(len(examples), generator=g)[: int(limit)].tolist())
    return [examples[i] for i in keep]


# ---- model initialisation ----------------------------------------------------------------------
def resolve_init(cfg: DictConfig) -> Path | None:
    """`stage.init_from`: null (from scratch), `auto` (pretrain run, else the demo LM), or a path."""
    init = cfg.stage.get("init_from")
    if init is None:
        return None
    if str(init) != "auto":
        path = stem_of(str(init))
        if not path.with_suffix(".json").is_file():
            raise VidchatError(
                f"stage.init_from={init}: no consolidated LM checkpoint at {path}.json"
            )
        return path
    candidates = [stem_of(Path(cfg.paths.checkpoint_dir) / "pretrain" / EXPORT_STEM),
                  stem_of(Path(cfg.paths.demo_checkpoint_dir) / EXPORT_STEM)]  # fmt: skip
    for path in candidates:
        if path.with_suffix(".json").is_file():
            return path
    raise VidchatError(
        f"stage {cfg.stage.name} starts from a pretrained LM but found none at "
        f"{' or '.join(str(c) + '.json' for c in candidates)}; run `python train.py stage=pretrain` first"
    )


def build_lm(cfg: DictConfig, layout: SequenceLayout) -> torch.nn.Module:
    """The LM to train: fresh (`build_model`) or from `stage.init_from`, with the runtime
    setting `model.grad_checkpointing` applied."""
    model = _init_lm(cfg, layout)
    model.grad_checkpointing = bool(cfg.model.get("grad_checkpointing", False))
    return model


def _init_lm(cfg: DictConfig, layout: SequenceLayout) -> torch.nn.Module:
    init = resolve_init(cfg)
    if init is None:
        return build_model(cfg.model, layout)
    model, init_layout, _ = load_consolidated(init)
    if init_layout.cfg != layout.cfg:
        raise ConfigError(
            f"{init}.json was trained with another token layout ({init_layout.cfg}) than the "
            f"shards ({layout.cfg}); use matching tokenizer/model.layout or stage.init_from=null"
        )
    log.info("initialised from %s", init)
    return model.float().train()


# ---- unigram baseline --------------------------------------------------------------------------
def unigram_baseline(train: LMSequenceDataset, val: LMSequenceDataset, vocab_size: int,
                     max_items: int = 512) -> dict[str, float]:  # fmt: skip
    """Cross-entropy (nats) on val loss positions of the add-one-smoothed unigram distribution
    of the training targets: the loss a model without context would reach."""
    counts = torch.ones(vocab_size, dtype=torch.float64)
    for i in range(min(len(train), max_items)):
        item = train[i]
        counts += torch.bincount(item.seq.tokens[item.loss_mask], minlength=vocab_size).double()
    logp = (counts / counts.sum()).log()
    sums = {"": [0.0, 0], "video_": [0.0, 0], "audio_": [0.0, 0]}
    for i in range(len(val)):
        item = val[i]
        mask = item.loss_mask.clone()
        mask[0] = False  # the first token is never predicted
        toks, mod = item.seq.tokens[mask], item.seq.modality[mask]
        for prefix, sel in (("", torch.ones_like(toks, dtype=torch.bool)),
                            ("video_", mod == Modality.VIDEO), ("audio_", mod == Modality.AUDIO)):  # fmt: skip
            sums[prefix][0] += float(-logp[toks[sel]].sum())
            sums[prefix][1] += int(sel.sum())
    return {f"unigram_{p}loss": s / max(n, 1) for p, (s, n) in sums.items()}


# ---- the stage ---------------------------------------------------------------------------------
@dataclass
class LMData:
    layout: SequenceLayout
    train: LMSequenceDataset
    val: LMSequenceDataset
    meta: dict[str, Any]


def prepare_data(cfg: DictConfig) -> LMData:
    from vidchat.data.manifest import load_manifest

    stage = cfg.stage
    reader = ensure_shards(cfg)
    layout = layout_from_shards(reader, cfg)
    manifest = load_manifest(cfg.data)
    seed = int(cfg.seed)
    train_ex = _subsample(_available(build_examples(stage, manifest, "train"), reader, "train"),
                          stage.get("max_examples"), seed)  # fmt: skip
    val_ex = _subsample(_available(build_examples(stage, manifest, "val"), reader, "val"),
                        stage.get("max_val_examples"), seed)  # fmt: skip
    if not train_ex:
        raise VidchatError(
            f"stage {stage.name}: no training examples for branches {list(stage.branches)} in "
            f"{cfg.data.get('root')} (split train)"
        )
    max_len = min(int(stage.max_seq_len), int(cfg.model.max_seq_len))
    kw = dict(max_seq_len=max_len, max_segment_seconds=stage.get("max_segment_seconds"))
    meta = {
        "stage": str(stage.name),
        "data": str(cfg.data.get("name") or cfg.data.get("kind")),
        "tokenizer_name": str(cfg.tokenizer.get("name")),
        "tokenizer": OmegaConf.to_container(cfg.tokenizer, resolve=True),
        "video_spec": reader.meta.get("video_spec"),
        "audio_spec": reader.meta.get("audio_spec"),
        "train_examples": len(train_ex),
        "val_examples": len(val_ex),
    }
    return LMData(layout, LMSequenceDataset(train_ex, reader, layout, **kw),
                  LMSequenceDataset(val_ex, reader, layout, **kw), meta)  # fmt: skip


def _fresh_start(root: Path) -> None:
    """A non-resumed run replaces the previous run's resumable checkpoints."""
    ckpts = checkpoint_dir(root)
    if ckpts.exists() and _is_main_process():
        log.info("resume=false: removing old checkpoints in %s", ckpts)
        shutil.rmtree(ckpts)


def write_report(root: Path, module: LMTrainingModule, baseline: dict[str, float],
                 extra: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
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
            w.writerow([int(row["step"]), f"{row['loss']:.4f}", f"{row['video_loss']:.4f}",
                        f"{row['audio_loss']:.4f}", f"{baseline['unigram_loss']:.4f}"])  # fmt: skip
    return report


def run(cfg: DictConfig) -> dict[str, Any]:
    """Stage entry (`stage.entry: vidchat.training.lm_stage:run`)."""
    stage = cfg.stage
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    data = prepare_data(cfg)
    root = run_dir(cfg)
    resume_from = last_checkpoint(root) if cfg.get("resume") else None
    if cfg.get("resume") and resume_from is None:
        log.warning("resume=true but %s has no %s: starting fresh", checkpoint_dir(root), LAST_NAME)
    if resume_from is None:
        _fresh_start(root)

    max_steps = int(stage.max_steps)
    accumulate = int(cfg.trainer.get("accumulate_grad_batches", 1))
    module = LMTrainingModule(
        build_lm(cfg, data.layout),  # a resumed run then loads its own weights over these
        data.layout,
        optim=OptimConfig.from_mapping(OmegaConf.to_container(stage.optim, resolve=True)),
        noise=parse_noise(
            OmegaConf.to_container(stage.noise, resolve=True) if stage.get("noise") else None
        ),
        total_steps=max_steps,
        seed=int(cfg.seed),
        meta=data.meta,
    )
    dm = LMDataModule(
        data.train, data.val if len(data.val) else None,
        batch_size=int(stage.batch_size),
        collator=LMCollator(str(stage.get("batching", "pad")), data.train.max_seq_len),
        total_micro_batches=max_steps * accumulate,
        seed=int(cfg.seed),
        num_workers=int(stage.get("num_workers", 0)),
    )  # fmt: skip
    throughput = ThroughputMonitor(peak_tflops=stage.get("peak_tflops"))
    trainer = build_trainer(cfg, max_steps=max_steps, callbacks=[throughput], default_root_dir=root,
                            use_distributed_sampler=False)  # fmt: skip
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume_from) if resume_from else None)

    # Final state: a resumable checkpoint (all ranks take part under DeepSpeed), then the export.
    last = checkpoint_dir(root) / LAST_NAME
    trainer.save_checkpoint(str(last))
    trainer.strategy.barrier()
    if len(data.val) and (
        not module.val_history or module.val_history[-1]["step"] != trainer.global_step
    ):
        trainer.validate(module, datamodule=dm, verbose=False)  # the final held-out loss
    if not trainer.is_global_zero:
        return {}
    stem = root / EXPORT_STEM
    meta = {**data.meta, "step": int(trainer.global_step)}
    if str(cfg.trainer.get("strategy")) == "deepspeed":
        export_from_checkpoint(last, stem)
    else:
        export_consolidated(module.model, data.layout, stem, meta=meta)
    baseline = unigram_baseline(data.train, data.val, data.layout.vocab.size)
    report = write_report(root, module, baseline, {
        "stage": str(stage.name), "step": int(trainer.global_step), "checkpoint": str(stem),
        "params": int(module.model.num_params()), **throughput.totals(),
        "train_examples": len(data.train), "val_examples": len(data.val),
    })  # fmt: skip
    vl, ul = report["val_loss"], report["unigram_loss"]
    if vl is not None and math.isfinite(vl):
        log.info("%s: val loss %.3f nats/token vs unigram baseline %.3f (%s)", stage.name, vl, ul,
                 root / "metrics.json")  # fmt: skip
        print(f"[{stage.name}] step {trainer.global_step}: val loss {vl:.3f} vs unigram {ul:.3f} "
              f"-> {stem}.safetensors, {root / 'metrics.json'}")  # fmt: skip
    return report
