"""LightningModule for the LM stages (pretrain, SFT): next-token loss on the layout's loss mask.

The wrapped `VidChatLM` stays architecture only; this module owns the loss (computed by
`vidchat.training.lm.losses`), noise injection, optimiser/schedule and per-step RNG. Batches
are `pad_batch`-style dicts of `[B,L]` tensors (`tokens`, `roles`, `next_slots`, `modality`,
`codebook`, `valid`, `loss_mask`).

Determinism: every micro-batch reseeds torch's global RNG (dropout) and builds the noise
generator from (seed, rank, micro-batch index), so a resumed run continues exactly like an
uninterrupted one without saving RNG states.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from vidchat.model.checkpoint import migrate_state
from vidchat.model.layout import SequenceLayout
from vidchat.model.plan import LayoutConfig
from vidchat.model.vocab import Vocab
from vidchat.training.lm.export import CKPT_LAYOUT, CKPT_META, CKPT_MODEL_CONFIG
from vidchat.training.lm.losses import next_token_nll, nll_loss
from vidchat.training.lm.noise import NoiseConfig, inject_noise
from vidchat.training.lm.turn_weight import turn_start_weights
from vidchat.training.optim import OptimConfig, configure_adamw


def step_generator(
    seed: int, rank: int, index: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """A generator seeded from (seed, rank, micro-batch index): reproducible across resumes."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + rank * 7_919 + index * 104_729) % (2**63 - 1))
    return g


class LMTrainingModule(L.LightningModule):
    """Trains a `VidChatLM` with next-token loss, noise injection, AdamW + warmup/cosine.

    model: the architecture-only `VidChatLM` (`lm_losses.next_token_nll` scores it).
    layout: the `SequenceLayout` (vocab ranges for noise injection; saved into checkpoints).
    meta: tokenizer specs/settings etc., saved into checkpoints and consolidated exports.
    total_steps: optimizer steps of the whole run (for the LR schedule).
    turn_start_weight: training-loss weight of the responder's first frame after its reference
        (`vidchat.training.lm.turn_weight`); 1 = a plain mean.
    loss_chunk: positions per pass of a flat model's output head + cross-entropy
        (`model.loss_chunk`, `lm_losses.linear_cross_entropy`); None = all at once.
    """

    def __init__(
        self,
        model: nn.Module,
        layout: SequenceLayout,
        *,
        optim: OptimConfig,
        noise: NoiseConfig,
        total_steps: int,
        seed: int = 0,
        turn_start_weight: float = 1.0,
        loss_chunk: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.layout = layout
        self.vocab: Vocab = layout.vocab
        self.meta = dict(meta or {})
        self.optim_cfg = optim
        self.noise_cfg = noise
        self.total_steps = int(total_steps)
        self.seed = int(seed)
        self.turn_start_weight = float(turn_start_weight)
        self.loss_chunk = loss_chunk
        self.val_history: list[dict[str, float]] = []
        self._val_sums: dict[str, Tensor] = {}

    # ---- loss ----------------------------------------------------------------------------
    def losses(
        self,
        batch: dict[str, Tensor],
        tokens: Tensor | None,
        g: torch.Generator,
        training: bool = False,
    ) -> dict[str, Tensor]:
        """`nll_loss` of `batch` given input `tokens` (default: the batch's own, clean). Each of
        the model's heads draws its training targets from `g` (a frame head guesses a random
        share of each frame and is scored on those codes; in training steps it cuts
        `noise.copy_dropout` of the frames off their copy path). `training`: `loss` weighs
        turn-start frames by `turn_start_weight`."""
        mask, head_inputs = batch["loss_mask"], {}
        options = {**dataclasses.asdict(self.noise_cfg), "training": training}
        for head in self.model.heads.values():
            inputs, mask = head.training_targets(batch, mask, g, options)
            head_inputs.update(inputs)
        inputs = batch["tokens"] if tokens is None else tokens
        nll = next_token_nll(
            self.model,
            inputs,
            batch["tokens"],
            batch["roles"],
            batch["next_slots"],
            depth=batch["depth"],
            modality=batch["modality"],
            head_inputs=head_inputs,
            documents=batch.get("documents"),
            chunk=self.loss_chunk,
        )
        weight = None
        if training and self.turn_start_weight != 1.0:
            weight = turn_start_weights(batch, self.turn_start_weight)
        return nll_loss(nll, mask, batch["modality"], weight)

    def _micro_batch_index(self, batch_idx: int) -> int:
        # Lightning's batch_idx restarts per epoch; the global micro-batch index does not.
        return self.global_step * self.trainer.accumulate_grad_batches + (
            batch_idx % self.trainer.accumulate_grad_batches
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        index = self._micro_batch_index(batch_idx)
        torch.manual_seed((self.seed * 31 + self.global_rank * 1_009 + index) % (2**63 - 1))
        g = step_generator(self.seed, self.global_rank, index, batch["tokens"].device)
        noised, noise_mask = inject_noise(
            batch["tokens"],
            batch["roles"],
            batch["modality"],
            batch["codebook"],
            batch["valid"],
            self.vocab,
            self.noise_cfg,
            g,
        )
        losses = self.losses(batch, noised, g, training=True)
        bs = batch["tokens"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=bs)
        self.log("train/video_loss", losses["video_loss"], batch_size=bs)
        self.log("train/audio_loss", losses["audio_loss"], batch_size=bs)
        self.log(
            "train/noised_fraction", noise_mask.float().sum() / batch["valid"].sum(), batch_size=bs
        )
        return losses["loss"]

    # ---- validation: exact token-weighted means over the whole val set ------------------------
    def on_validation_epoch_start(self) -> None:
        self._val_sums = {}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # the same hidden codes at every validation: a fixed generator per batch
        g = step_generator(self.seed, -1, batch_idx, batch["tokens"].device)
        losses = self.losses(batch, None, g)
        for key, value in losses.items():
            if key.endswith(("_sum", "count")):
                self._val_sums[key] = self._val_sums.get(key, 0) + value.double()

    def on_validation_epoch_end(self) -> None:
        if not self._val_sums:
            return
        sums = {
            k: self.trainer.strategy.reduce(v, reduce_op="sum") for k, v in self._val_sums.items()
        }
        row: dict[str, float] = {"step": float(self.global_step)}
        for prefix in ("", "video_", "audio_"):
            count = float(sums[f"{prefix}count"])
            value = float(sums[f"{prefix}loss_sum"]) / max(count, 1.0)
            row[f"{prefix}loss"] = value
            self.log(f"val/{prefix}loss", value, prog_bar=prefix == "", rank_zero_only=True)
        row["tokens"] = float(sums["count"])
        if not self.trainer.sanity_checking:
            self.val_history.append(row)

    # ---- optimiser ---------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        return configure_adamw(self.model.named_parameters(), self.optim_cfg, self.total_steps)

    # ---- checkpoint extras -------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["vidchat_val_history"] = list(self.val_history)
        # Enough to export a consolidated checkpoint from this file alone (training/lm/export.py).
        checkpoint[CKPT_MODEL_CONFIG] = dataclasses.asdict(self.model.cfg)
        checkpoint[CKPT_LAYOUT] = dataclasses.asdict(self.layout.cfg)
        checkpoint[CKPT_META] = self.meta

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the validation history, and rename the weights of a checkpoint saved before
        heads were classes (`migrate_state`), so that such a run resumes (Lightning loads the
        state dict after this hook)."""
        self.val_history = list(checkpoint.get("vidchat_val_history", []))
        state, layout = checkpoint.get("state_dict"), checkpoint.get(CKPT_LAYOUT)
        if state is None or not layout:
            return
        inner = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        migrated = migrate_state(inner, LayoutConfig(**layout))
        if migrated is not inner:
            rest = {k: v for k, v in state.items() if not k.startswith("model.")}
            checkpoint["state_dict"] = {**rest, **{f"model.{k}": v for k, v in migrated.items()}}
