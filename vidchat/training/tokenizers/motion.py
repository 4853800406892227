"""Training the motion tokenizer (`tokenizer.video.kind=motion`) on self-reenactment pairs.

    python train.py stage=video_tokenizer tokenizer=motion [tokenizer.video.model.num_codes=4]
    python train.py experiment=demo64_motion stage=video_tokenizer  # the shipped 64 px one

A pair is two frames of one person: the reference (what the face looks like), from any clip
with the driver's `speaker_id` (the driver's own clip when the records name no speaker), and
the driver (how it moves). The tokenizer codes the driver's motion, renders it on the
reference, and learns to give the driver back. Pairs never cross identities, so the recipe runs
the same on the SpeakerVid-5M release or a folder of clips (FOMM's and LIA's training).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from vidchat.media.clip import Clip
from vidchat.tokenizers.motion import MotionConfig, MotionTokenizer
from vidchat.training.config import TokenizerStageConfig
from vidchat.training.tokenizers.data import decode_records_kept
from vidchat.training.tokenizers.job import (
    TokenizerJob,
    fit_batches,
    records,
    register_tokenizer_trainer,
    save_and_measure,
    start_from,
    video_model_config,
)
from vidchat.training.tokenizers.losses import image_gradient_loss
from vidchat.training.tokenizers.metrics import codebook_usage, psnr
from vidchat.training.tokenizers.modules import VideoTokenizerModule

log = logging.getLogger("vidchat")


class ReenactmentPairs(Dataset):
    """Every frame of the clips as a driver, with a reference of the same person: item =
    `[2,H,W,3]` uint8 (reference, driver).

    `speakers[i]` names clip i's person ("" when unknown: the clip is its own person). In
    training (`random=True`) the reference is a random frame of a random clip of that person, so
    a driver whose expression differs from the reference's (another clip, another emotion) makes
    the codes carry the expression rather than the renderer copy it from the reference. For
    validation it is the first frame of the person's first other clip (the same pairs at every
    validation), or of its own clip when it has no other.
    """

    def __init__(self, clips: Sequence[np.ndarray], speakers: Sequence[str], random: bool) -> None:
        kept = [(c, s) for c, s in zip(clips, speakers, strict=True) if len(c) >= 2]
        self.clips = [torch.from_numpy(np.ascontiguousarray(c)) for c, _ in kept]
        by_person: dict[str, list[int]] = defaultdict(list)
        for i, (_, speaker) in enumerate(kept):
            by_person[speaker or f"clip {i}"].append(i)
        self.same_person = [by_person[s or f"clip {i}"] for i, (_, s) in enumerate(kept)]
        self.index = [(c, t) for c, frames in enumerate(self.clips) for t in range(len(frames))]
        self.random = random

    def __len__(self) -> int:
        return len(self.index)

    def reference_of(self, c: int) -> torch.Tensor:
        """A reference frame `[H,W,3]` for a driver from clip `c`."""
        people = self.same_person[c]
        if self.random:
            r = people[int(torch.randint(0, len(people), ()))]
            return self.clips[r][int(torch.randint(0, len(self.clips[r]), ()))]
        others = [i for i in people if i != c]
        return self.clips[others[0] if others else c][0]

    def __getitem__(self, i: int) -> torch.Tensor:
        c, t = self.index[i]
        return torch.stack([self.reference_of(c), self.clips[c][t]])


def colour_jitter(images: torch.Tensor, amount: float, grid: int = 1) -> torch.Tensor:
    """Images `[N,3,H,W]` in [-1,1], each with its own random per-channel gain in 1 ± amount and
    offset in ± amount (clamped to [-1,1]). Applied to the driver the motion encoder sees (never
    to the target), it leaves colour, which is most of a face's identity, useless to the codes.

    `grid` > 1 draws a gain and an offset for each cell of a `grid` x `grid` lattice, bilinearly
    blended across the image, so hair, skin, shirt and background each get their own. Why: one
    gain for the whole image keeps how light the hair is against the skin, and the motion codes
    were found to carry exactly that (the identity probe of `bench/reenact.py` reads a face's
    colours from them, not its shape: docs/experiments.md, session 8). A smooth field keeps the
    local contrast that draws a mouth or an eye, within a cell, and scrambles the levels of
    regions a cell apart. A jitter only makes colour unreliable; nothing in the reconstruction
    asks the codes not to follow it, which is what `MotionTokenizerModule.jitter_consistency`
    adds (the grid alone did not lower the probe, the two together did)."""
    if amount <= 0:
        return images
    n, _, h, w = images.shape
    gain = 1 + amount * (2 * torch.rand(n, 3, grid, grid, device=images.device) - 1)
    offset = amount * (2 * torch.rand(n, 3, grid, grid, device=images.device) - 1)
    if grid > 1:
        gain = F.interpolate(gain, size=(h, w), mode="bilinear", align_corners=True)
        offset = F.interpolate(offset, size=(h, w), mode="bilinear", align_corners=True)
    return (images * gain + offset).clamp(-1, 1)


def change_weighted_losses(
    recon: torch.Tensor, driver: torch.Tensor, reference: torch.Tensor, change_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L1, L2) of `recon` against `driver`, all `[N,3,H,W]` in [-1,1], each pixel weighted by
    `1 + change_weight * |driver - reference|` (averaged over channels; the weights normalised to
    mean 1, so the loss keeps its scale).

    Why: most of a driver is its reference already (same face, same background), and the few
    pixels that moved (the corners of a smile, a frown's lips) are where the codes' work shows.
    Under a plain pixel loss a renderer that is unsure draws them half-way: the reference's
    mouth and the driver's, each faint. Weighting the pixels where driver and reference differ
    makes that ghost cost what it looks like. It needs no landmarks or labels, so the recipe
    runs the same on real clips. Not in the shipped recipe: as a 1,000-step fine-tune it moved
    nothing (docs/experiments.md, "Motion tokens"); from the first step it is untried."""
    if change_weight <= 0:
        return F.l1_loss(recon, driver), F.mse_loss(recon, driver)
    change = (driver - reference).abs().mean(dim=1, keepdim=True)  # [N,1,H,W]
    weight = 1 + change_weight * change
    weight = weight / weight.mean()
    return (weight * (recon - driver).abs()).mean(), (weight * (recon - driver) ** 2).mean()


class MotionTokenizerModule(VideoTokenizerModule):
    """Batches of pairs `[N,2,H,W,3]` uint8 (reference, driver); loss = L1 + L2 (weighted by
    `change_weight` where driver and reference differ) + edge loss of the driver rendered from
    its codes on the reference. The encoder sees the driver with `driver_jitter` colour
    jitter (over a `driver_jitter_grid` lattice); the loss compares against the clean driver.

    `jitter_consistency` > 0 reads each driver a second time, under another jitter, and adds
    that weight times the MSE between the two quantised motions (straight-through, so it
    reaches the encoder): the same frame in other colours must give the same codes, so a
    face's palette, which the renderer takes from the reference anyway, stays out of them."""

    driver_jitter: float = 0.0
    driver_jitter_grid: int = 1
    jitter_consistency: float = 0.0
    change_weight: float = 0.0

    @classmethod
    def for_stage(cls, tokenizer, stage: TokenizerStageConfig) -> MotionTokenizerModule:
        module = super().for_stage(tokenizer, stage)
        module.driver_jitter = stage.driver_jitter
        module.driver_jitter_grid = stage.driver_jitter_grid
        module.jitter_consistency = stage.jitter_consistency
        module.change_weight = stage.change_weight
        return module

    def jittered(self, driver: torch.Tensor) -> torch.Tensor:
        """Driving images `[N,3,H,W]` in [-1,1] as the motion encoder sees them in training: a
        fresh colour jitter at each call."""
        return colour_jitter(driver, self.driver_jitter, self.driver_jitter_grid)

    def loss(self, pairs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        reference, driver = self.to_images(pairs[:, 0]), self.to_images(pairs[:, 1])
        q = self.tokenizer.quantize_motion(self.jittered(driver))
        recon = self.tokenizer.render(q.quantized, reference)
        l1, l2 = change_weighted_losses(recon, driver, reference, self.change_weight)
        loss = l1 + l2 + self.edge_weight * image_gradient_loss(driver, recon) + q.loss
        logs = {"train/l1": l1}
        if self.jitter_consistency > 0:  # the same driver under another jitter: the same codes
            again = self.tokenizer.quantize_motion(self.jittered(driver))
            logs["train/consistency"] = F.mse_loss(again.quantized, q.quantized)
            loss = loss + self.jitter_consistency * logs["train/consistency"]
        return loss, {"train/loss": loss, **logs}

    def validation_step(self, pairs: torch.Tensor, batch_idx: int) -> None:
        reference, driver = self.to_images(pairs[:, 0]), self.to_images(pairs[:, 1])
        recon, q = self.tokenizer(driver, reference)
        self.log("val/psnr", psnr((driver + 1) / 2, (recon.clamp(-1, 1) + 1) / 2), prog_bar=True)
        self._val_codes.append(q.codes.flatten().cpu())


@torch.no_grad()
def evaluate_motion_tokenizer(
    tokenizer: MotionTokenizer, clips: Sequence[np.ndarray]
) -> dict[str, float]:
    """Each clip `[T,H,W,3]` uint8 coded and rendered back on its own first frame ->
    {round_trip_psnr_db, perplexity, codes_used, num_frames}."""
    scores, codes_all, frames_seen = [], [], 0
    for clip in clips:
        x = torch.from_numpy(np.ascontiguousarray(clip))
        codes = tokenizer.encode(x[None])  # [1,T,1,N]
        rec = tokenizer.decode(codes, reference=x[0]).cpu()[0]
        scores.append(psnr(x.float() / 255, rec.float() / 255) * len(x))
        codes_all.append(codes.flatten().cpu())
        frames_seen += len(x)
    perplexity, used = codebook_usage(torch.cat(codes_all), tokenizer.spec.codebook_size)
    return {
        "round_trip_psnr_db": round(sum(scores) / max(frames_seen, 1), 3),
        "perplexity": round(perplexity, 2),
        "codes_used": round(used, 4),
        "num_frames": frames_seen,
    }


def _frames_and_speakers(kept: Sequence[tuple[Any, Clip]]) -> tuple[list[np.ndarray], list[str]]:
    """(record, clip) pairs -> (each clip's frames, each clip's `speaker_id` or "")."""
    return [c.frames for _, c in kept], [str(getattr(r, "speaker_id", "") or "") for r, _ in kept]


@register_tokenizer_trainer("video", "motion")
def train_motion_tokenizer(job: TokenizerJob) -> dict[str, float]:
    """The motion tokenizer on self-reenactment pairs of the manifest's clips."""
    s, cfg = job.stage, video_model_config(job, MotionConfig)
    tokenizer = start_from(job, MotionTokenizer(cfg))  # a bad init_from or freeze fails here,
    module = MotionTokenizerModule.for_stage(tokenizer, s)  # before minutes of decoding
    train_recs, val_recs = records(job)
    read = dict(fps=cfg.fps, size=cfg.frame_size)
    train = decode_records_kept(train_recs, **read, desc="decode train clips")
    val = decode_records_kept(val_recs, **read, desc="decode val clips")
    train_pairs = ReenactmentPairs(*_frames_and_speakers(train), random=True)
    val_pairs = ReenactmentPairs(*_frames_and_speakers(val), random=False)
    log.info("motion tokenizer: %d train pairs, %d val pairs", len(train_pairs), len(val_pairs))
    fit_batches(job, module, train_pairs, DataLoader(val_pairs, s.batch_size))
    return save_and_measure(
        job,
        "video",
        tokenizer,
        lambda t: evaluate_motion_tokenizer(t, [c.frames for _, c in val]),
        val_recs,
    )
