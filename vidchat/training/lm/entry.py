"""The LM stages' entry point (`stage.entry: vidchat.training.lm.entry:run`).

The config is typed here, with only the config modules imported, so that a bad value is one
`error:` line within a couple of seconds; Lightning and the rest of training load afterwards
(`vidchat.training.lm.stage`).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from vidchat.data.config import DataConfig
from vidchat.errors import ConfigError
from vidchat.training.config import (
    TOKENIZER_ONLY_KEYS,
    LMJob,
    LMStageConfig,
    RunConfig,
    TokenizeStageConfig,
)
from vidchat.utils.config import to_plain
from vidchat.utils.typed import from_node


def lm_job(cfg: DictConfig) -> tuple[LMJob, RunConfig]:
    """A composed config -> the typed job of an LM stage and its run settings (also for scripts
    that read an LM stage's data, such as `bench/copy_probe.py`)."""
    stage = from_node(LMStageConfig, cfg.stage, "stage", ignore=(*TOKENIZER_ONLY_KEYS, "tokenize"))
    run_cfg = RunConfig.from_cfg(cfg, stage.name)
    tokenize = cfg.stage.get("tokenize")
    if tokenize is not None:  # the tokenize run this stage starts by itself
        tokenize = from_node(TokenizeStageConfig, tokenize, "stage.tokenize")
        if tokenize.num_shards > 1:  # it would write a partial set
            raise ConfigError(
                f"stage.tokenize.num_shards={tokenize.num_shards} splits tokenize "
                "over machines: run `python train.py stage=tokenize "
                "stage.shard_index=k stage.num_shards=N` on each first"
            )
    job = LMJob(
        stage=stage,
        data=DataConfig.from_cfg(cfg.data),
        model=to_plain(cfg.model),
        tokenizer=to_plain(cfg.tokenizer),
        data_dir=run_cfg.paths.data_dir,
        seed=run_cfg.seed,
        tokenize=tokenize,
    )
    return job, run_cfg


def run(cfg: DictConfig) -> dict[str, Any]:
    """Stage entry: type the config, then train (`vidchat.training.lm.stage.train_lm`)."""
    job, run_cfg = lm_job(cfg)
    from vidchat.training.lm.stage import train_lm

    return train_lm(job, run_cfg)
