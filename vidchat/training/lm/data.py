"""The LM stages' data: token shards (tokenized first when missing), training examples per
branch, the sequence layout the shards' tokenizers imply, and a unigram baseline."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from vidchat.data.lm_dataset import (
    LMExample,
    LMSequenceDataset,
    pair_examples,
    reference_picker,
    single_examples,
)
from vidchat.data.records import source_signature
from vidchat.data.shards import META_NAME, ShardReader
from vidchat.errors import VidchatError
from vidchat.model import Modality, SequenceLayout, build_layout
from vidchat.training.config import LMJob, LMStageConfig, TokenizeStageConfig
from vidchat.training.tokenize.stage import run_tokenize
from vidchat.utils.paths import CONFIG_DIR
from vidchat.utils.typed import from_node

log = logging.getLogger("vidchat")

TOKENIZED_MARKER = ".tokenized"
PAIR_BRANCHES = ("dialogue", "listening", "multi_turn")


def is_main_process() -> bool:
    """True outside the worker processes that Lightning/torchrun start (LOCAL_RANK > 0)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("RANK", "0")) == 0


def ensure_shards(job: LMJob, wait_s: float = 4 * 3600, manifest: Any = None) -> ShardReader:
    """A `ShardReader` for the job's shard folder, running the tokenize stage first when it is
    missing, or when this stage made it and it no longer matches the data (`_stale_clip`: clips
    it lacks, clips from other files; tokenize redoes just those). A stale set the user made is
    refused with one line. Only the main process tokenizes; other ranks (torchrun starts them
    together) wait for the marker file it writes when done. `manifest`: the data's, when the
    caller has it (loaded here otherwise)."""
    root = job.shard_root
    marker = root / TOKENIZED_MARKER
    stale = None
    if (root / META_NAME).is_file() and is_main_process():
        stale = _stale_clip(job, ShardReader(root), marker.is_file(), manifest)
        if stale and not marker.is_file():  # the user's own tokenize run: theirs to redo
            raise VidchatError(
                f"{root}: tokens are stale ({stale}); run `python train.py "
                "stage=tokenize` with this data config (it redoes exactly the "
                "changed clips) or point data.tokens_dir at a new folder"
            )
    if not (root / META_NAME).is_file() or stale:
        if is_main_process():
            log.info("token shards in %s missing or incomplete: running stage=tokenize", root)
            from omegaconf import OmegaConf

            tok = job.tokenize or from_node(
                TokenizeStageConfig, OmegaConf.load(CONFIG_DIR / "stage" / "tokenize.yaml"), "stage"
            )
            marker.unlink(missing_ok=True)
            run_tokenize(tok, job.data, job.tokenizer, job.data_dir)
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


def _stale_clip(job: LMJob, reader: ShardReader, missing: bool, manifest: Any = None) -> str | None:
    """Why the shard set does not match the data, naming the first clip (None when it does):
    a clip tokenized (or failed) from other files than the data lists now (another data.root,
    files replaced under the same names, a .wav added), or, with `missing`, a clip it lacks."""
    from vidchat.data.manifest import load_manifest

    failed = {f["clip_id"] for f in reader.failures()}
    for r in (manifest or load_manifest(job.data)).records:
        if r.clip_id not in reader and r.clip_id not in failed:
            if missing:
                return f"clip {r.clip_id} is not tokenized"
            continue
        made_from = reader.source(r.clip_id)
        if made_from is not None and made_from != source_signature(r):
            return f"clip {r.clip_id} was tokenized from other files than {r.path}"
    return None


def layout_from_shards(reader: Any, layout_cfg: Any) -> SequenceLayout:
    """The sequence layout for the tokenizer specs recorded in the shards."""
    meta = reader.meta
    if "video_spec" not in meta or "audio_spec" not in meta:
        raise VidchatError(
            f"{reader.roots[0]}/meta.json has no tokenizer specs; re-run stage=tokenize"
        )
    video, audio = SimpleNamespace(**meta["video_spec"]), SimpleNamespace(**meta["audio_spec"])
    return build_layout(video, audio, layout_cfg)


def build_examples(stage: LMStageConfig, manifest: Any, split: str) -> list[LMExample]:
    """Examples of `stage.branches` in `split`, each with its branch's loss mode."""
    branches, loss_modes = list(stage.branches), dict(stage.loss_modes)
    # other_clip references come from the split's own clips, so no test frame reaches training
    pool = manifest.records if stage.reference == "image" else manifest.records_for(split)
    refs = reference_picker(pool, stage.reference)
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
        log.warning(
            "%s: %d of %d examples dropped (clips missing from the token shards)",
            what,
            len(examples) - len(kept),
            len(examples),
        )
    return kept


def _subsample(examples: list[LMExample], limit: Any, seed: int) -> list[LMExample]:
    if limit is None or len(examples) <= int(limit):
        return examples
    g = torch.Generator().manual_seed(seed)
    keep = sorted(torch.randperm(len(examples), generator=g)[: int(limit)].tolist())
    return [examples[i] for i in keep]


@dataclass
class LMData:
    layout: SequenceLayout
    train: LMSequenceDataset
    val: LMSequenceDataset
    meta: dict[str, Any]


def prepare_data(job: LMJob) -> LMData:
    from vidchat.data.manifest import load_manifest

    stage = job.stage
    manifest = load_manifest(job.data)  # (a demo world is generated here, before tokenize)
    reader = ensure_shards(job, manifest=manifest)
    if reader.meta.get("video_spec"):
        job.data.video.check_tokenizer(reader.meta["video_spec"], f"{job.shard_root}/meta.json")
    layout = layout_from_shards(reader, job.model.get("layout"))
    train_ex = _subsample(
        _available(build_examples(stage, manifest, "train"), reader, "train"),
        stage.max_examples,
        job.seed,
    )
    val_ex = _subsample(
        _available(build_examples(stage, manifest, "val"), reader, "val"),
        stage.max_val_examples,
        job.seed,
    )
    if not train_ex:
        failed = len(reader.failures())
        hint = (
            f"; {failed} clip(s) failed to tokenize (listed in {job.shard_root}/failures-*.json"
            "; fix their files and rerun, or retry with stage=tokenize stage.retry_failed=true)"
            if failed
            else ""
        )
        raise VidchatError(
            f"stage {stage.name}: no training examples for branches {list(stage.branches)} in "
            f"{job.data.root} (split train){hint}"
        )
    max_len = min(stage.max_seq_len, int(job.model["max_seq_len"]))
    kw = dict(max_seq_len=max_len, max_segment_seconds=stage.max_segment_seconds)
    meta = {
        "stage": stage.name,
        "data": job.data.display_name,
        "tokenizer_name": str(job.tokenizer.get("name")),
        "tokenizer": job.tokenizer,
        "video_spec": reader.meta.get("video_spec"),
        "audio_spec": reader.meta.get("audio_spec"),
        "partner_seconds": stage.max_segment_seconds,  # inference crops the partner alike
        "train_examples": len(train_ex),
        "val_examples": len(val_ex),
    }
    return LMData(
        layout,
        LMSequenceDataset(train_ex, reader, layout, **kw),
        LMSequenceDataset(val_ex, reader, layout, **kw),
        meta,
    )


def unigram_baseline(
    train: LMSequenceDataset, val: LMSequenceDataset, vocab_size: int, max_items: int = 512
) -> dict[str, float]:
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
        for prefix, sel in (
            ("", torch.ones_like(toks, dtype=torch.bool)),
            ("video_", mod == Modality.VIDEO),
            ("audio_", mod == Modality.AUDIO),
        ):
            sums[prefix][0] += float(-logp[toks[sel]].sum())
            sums[prefix][1] += int(sel.sum())
    return {f"unigram_{p}loss": s / max(n, 1) for p, (s, n) in sums.items()}
