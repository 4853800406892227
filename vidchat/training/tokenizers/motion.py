"""Training the motion tokenizer (`tokenizer.video.kind=motion`) on self-reenactment pairs.

    python train.py stage=video_tokenizer tokenizer.video.kind=motion [tokenizer.video.model.num_codes=4]

A pair is two frames of one clip: the reference (what the face looks like) and the driver (how
it moves). The tokenizer codes the driver's motion, renders it on the reference, and learns to
give the driver back. Pairs never cross identities, so the recipe needs no identity labels and
runs the same on the SpeakerVid-5M release or a folder of clips (FOMM's and LIA's training).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from vidchat.tokenizers.motion import MotionConfig, MotionTokenizer
from vidchat.training.tokenizers.data import decode_records
from vidchat.training.tokenizers.job import (
    TokenizerJob,
    fit_batches,
    records,
    register_tokenizer_trainer,
    save_and_measure,
    video_model_config,
)
from vidchat.training.tokenizers.losses import image_gradient_loss
from vidchat.training.tokenizers.metrics import codebook_usage, psnr
from vidchat.training.tokenizers.modules import VideoTokenizerModule

log = logging.getLogger("vidchat")


class ReenactmentPairs(Dataset):
    """Every frame of the clips as a driver, with a reference from its own clip: item =
    `[2,H,W,3]` uint8 (reference, driver). The reference is a random frame of the clip in
    training (`random=True`), its first frame otherwise (the same pairs at every validation)."""

    def __init__(self, clips: Sequence[np.ndarray], random: bool) -> None:
        self.clips = [torch.from_numpy(np.ascontiguousarray(c)) for c in clips if len(c) >= 2]
        self.index = [(c, t) for c, frames in enumerate(self.clips) for t in range(len(frames))]
        self.random = random

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> torch.Tensor:
        c, t = self.index[i]
        frames = self.clips[c]
        r = int(torch.randint(0, len(frames), ())) if self.random else 0
        return torch.stack([frames[r], frames[t]])


class MotionTokenizerModule(VideoTokenizerModule):
    """Batches of pairs `[N,2,H,W,3]` uint8 (reference, driver); loss = L1 + L2 + edge loss of
    the driver rendered from its codes on the reference."""

    def loss(self, pairs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        reference, driver = self.to_images(pairs[:, 0]), self.to_images(pairs[:, 1])
        recon, q = self.tokenizer(driver, reference)
        l1, l2 = F.l1_loss(recon, driver), F.mse_loss(recon, driver)
        loss = l1 + l2 + self.edge_weight * image_gradient_loss(driver, recon) + q.loss
        return loss, {"train/loss": loss, "train/l1": l1}

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


@register_tokenizer_trainer("video", "motion")
def train_motion_tokenizer(job: TokenizerJob) -> dict[str, float]:
    """The motion tokenizer on self-reenactment pairs of the manifest's clips."""
    s, cfg = job.stage, video_model_config(job, MotionConfig)
    train_recs, val_recs = records(job)
    read = dict(fps=cfg.fps, size=cfg.frame_size)
    train = [c.frames for c in decode_records(train_recs, **read, desc="decode train clips")]
    val = [c.frames for c in decode_records(val_recs, **read, desc="decode val clips")]
    train_pairs, val_pairs = ReenactmentPairs(train, random=True), ReenactmentPairs(val, False)
    log.info("motion tokenizer: %d train pairs, %d val pairs", len(train_pairs), len(val_pairs))
    tokenizer = MotionTokenizer(cfg)
    module = MotionTokenizerModule.for_stage(tokenizer, s)
    fit_batches(job, module, train_pairs, DataLoader(val_pairs, s.batch_size))
    return save_and_measure(
        job, "video", tokenizer, lambda t: evaluate_motion_tokenizer(t, val), val_recs
    )
