"""`LMDataModule`: resumable training loader and a full validation loader for the LM stages.

The training loader's sampler starts at the samples this rank already consumed
(`trainer.global_step * accumulate_grad_batches` batches, restored by Lightning before it asks
for the loader), so `resume=true` continues with exactly the next batch. Use it with
`use_distributed_sampler=False`: `ResumableSampler` shards across ranks itself.
"""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Dataset

from vidchat.data.lm_dataset import LMCollator, ResumableSampler
from vidchat.utils.processes import exit_with_parent


class ResumableDataLoader(DataLoader):
    """A DataLoader Lightning treats as resumable (it has `state_dict`/`load_state_dict`).

    Its position needs no saved state: `LMDataModule` rebuilds the sampler at the restored
    step. The methods only tell Lightning so (and silence its "not resumable" warning).
    """

    def state_dict(self) -> dict:
        return {"start": getattr(self.sampler, "start", 0)}

    def load_state_dict(self, state: dict) -> None:
        return None


class LMDataModule(L.LightningDataModule):
    """train/val datasets of `LMItem`s -> `[B,L]` batch loaders.

    total_micro_batches: micro-batches each rank draws over the whole run
    (`max_steps * accumulate_grad_batches`).
    """

    def __init__(
        self,
        train: Dataset,
        val: Dataset | None,
        *,
        batch_size: int,
        collator: LMCollator,
        total_micro_batches: int,
        seed: int = 0,
        num_workers: int = 0,
        val_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.train_set, self.val_set = train, val
        self.batch_size = int(batch_size)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.collator = collator
        self.total_micro_batches = int(total_micro_batches)
        self.seed = int(seed)
        self.num_workers = int(num_workers)

    def train_sampler(self) -> ResumableSampler:
        trainer = self.trainer
        consumed_batches = trainer.global_step * trainer.accumulate_grad_batches
        return ResumableSampler(
            len(self.train_set),
            samples_per_rank=self.total_micro_batches * self.batch_size,
            seed=self.seed,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            start=consumed_batches * self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return ResumableDataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=self.train_sampler(),
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=exit_with_parent,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None or len(self.val_set) == 0:
            return []
        return DataLoader(
            self.val_set,
            batch_size=self.val_batch_size,
            shuffle=False,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            worker_init_fn=exit_with_parent,
        )
