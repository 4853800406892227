"""Typed configs of the training stages, made once at the stage's entry point.

`RunConfig.from_cfg(cfg)` holds what every stage shares (paths, seed, resume, run name, the
trainer and the logger); each stage adds its own `stage` dataclass. Below the entry point no
function takes the root Hydra config: each gets the typed pieces it uses. Bad values fail here,
before any work, with one line naming the key (see `vidchat.utils.typed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidchat.data.config import DataConfig
from vidchat.data.lm_dataset import REFERENCE_SOURCES
from vidchat.errors import ConfigError
from vidchat.training.lm.noise import NoiseConfig
from vidchat.training.optim import OptimConfig
from vidchat.utils.config import to_plain
from vidchat.utils.typed import check, convert, from_node

BRANCH_NAMES = ("single", "dialogue", "listening", "multi_turn")
# `debug=default` shrinks any stage, so it sets keys of both kinds of stage; each kind ignores
# the other kind's.
TOKENIZER_ONLY_KEYS = ("max_clips",)
LM_ONLY_KEYS = ("max_examples", "max_val_examples", "max_segment_seconds", "optim", "noise")


@dataclass(frozen=True)
class PathsConfig:
    """`paths`: where data, checkpoints and outputs live."""

    root_dir: str = "."
    data_dir: str = "data_cache"
    checkpoint_dir: str = "checkpoints"
    demo_checkpoint_dir: str = "pkg:vidchat/assets/demo"
    output_dir: str = "outputs"


@dataclass(frozen=True)
class TrainerConfig:
    """`trainer` (configs/trainer): devices, precision, distribution, validation, checkpoints."""

    accelerator: str = "cpu"
    devices: int | str | list[int] = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0
    log_every_n_steps: int = 5
    val_check_interval: int | float | None = 40
    """Optimizer steps between validations (int), or a fraction of an epoch (float)."""
    limit_val_batches: int | float = 1.0
    num_sanity_val_steps: int = 0
    checkpoint_every_n_steps: int | None = 40
    """Optimizer steps between resumable checkpoints; 0 or null = none."""
    save_top_k: int = 2
    deterministic: bool = False
    enable_progress_bar: bool = True
    deepspeed: dict | None = None

    def __post_init__(self) -> None:
        d = self.devices
        ok = (
            d == "auto"
            or (isinstance(d, int) and (d >= 1 or d == -1))
            or (
                isinstance(d, list | tuple)
                and bool(d)
                and all(isinstance(i, int) and i >= 0 for i in d)
            )
        )
        check("trainer.devices", ok, "auto, -1 (all), a count >= 1 or a list of device ids", d)
        check("trainer.num_nodes", self.num_nodes >= 1, ">= 1", self.num_nodes)
        check(
            "trainer.accumulate_grad_batches",
            self.accumulate_grad_batches >= 1,
            ">= 1",
            self.accumulate_grad_batches,
        )
        check(
            "trainer.log_every_n_steps", self.log_every_n_steps >= 1, ">= 1", self.log_every_n_steps
        )
        c = self.checkpoint_every_n_steps
        check("trainer.checkpoint_every_n_steps", c is None or c >= 0, ">= 0 or null", c)
        check("trainer.save_top_k", self.save_top_k >= -1, ">= -1 (-1 keeps all)", self.save_top_k)
        v = self.val_check_interval
        check("trainer.val_check_interval", v is None or v > 0, "positive or null", v)
        g = self.gradient_clip_val
        check("trainer.gradient_clip_val", g is None or g >= 0, ">= 0 or null", g)

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style read, for the helpers that resolve trainer settings."""
        value = getattr(self, key, default)
        return default if value is None else value


@dataclass(frozen=True)
class RunConfig:
    """What every training stage shares: the root config's non-stage parts."""

    paths: PathsConfig
    trainer: TrainerConfig
    logger: dict = field(default_factory=lambda: {"type": "csv"})
    """`logger` (configs/logger): `type` plus that logger's options."""
    seed: int = 0
    resume: bool = False
    run_name: str = ""

    @classmethod
    def from_cfg(cls, cfg: Any, stage_name: str) -> RunConfig:
        root = to_plain(cfg)
        return cls(
            paths=from_node(PathsConfig, root.get("paths"), "paths"),
            trainer=from_node(TrainerConfig, root.get("trainer"), "trainer"),
            logger=dict(root.get("logger") or {"type": "csv"}),
            seed=convert(root.get("seed", 0), int, "seed"),
            resume=bool(root.get("resume", False)),
            run_name=str(root.get("run_name") or stage_name),
        )

    def checkpoint_root(self) -> Path:
        """`${paths.checkpoint_dir}/<run_name>`: where an LM stage writes."""
        return Path(self.paths.checkpoint_dir) / self.run_name

    def output_root(self) -> Path:
        """`${paths.output_dir}/runs/<run_name>`: where a tokenizer stage logs."""
        return Path(self.paths.output_dir) / "runs" / self.run_name


@dataclass(frozen=True)
class LMStageConfig:
    """`stage` of `stage=pretrain|sft` (configs/stage/pretrain.yaml documents each key)."""

    name: str
    entry: str = ""
    branches: tuple[str, ...] = ("single", "listening")
    loss_modes: dict = field(default_factory=dict)
    init_from: str | None = None
    max_steps: int = 120
    batch_size: int = 4
    batching: str = "pad"
    max_seq_len: int = 2048
    max_segment_seconds: float | None = 2.0
    max_examples: int | None = None
    max_val_examples: int | None = 32
    num_workers: int = 0
    peak_tflops: float | None = None
    turn_start_weight: float = 1.0
    reference: str = "image"
    optim: OptimConfig = field(default_factory=OptimConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        check("stage.max_steps", self.max_steps >= 1, ">= 1", self.max_steps)
        check("stage.batch_size", self.batch_size >= 1, ">= 1", self.batch_size)
        check("stage.batching", self.batching in ("pad", "pack"), "pad or pack", self.batching)
        check("stage.max_seq_len", self.max_seq_len >= 16, ">= 16", self.max_seq_len)
        s = self.max_segment_seconds
        check("stage.max_segment_seconds", s is None or s > 0, "positive or null", s)
        for key in ("max_examples", "max_val_examples"):
            n = getattr(self, key)
            check(f"stage.{key}", n is None or n >= 0, ">= 0 or null", n)
        check("stage.num_workers", self.num_workers >= 0, ">= 0", self.num_workers)
        w = self.turn_start_weight
        check("stage.turn_start_weight", w > 0, "positive", w)
        check(
            "stage.reference",
            self.reference in REFERENCE_SOURCES,
            f"one of {list(REFERENCE_SOURCES)}",
            self.reference,
        )
        bad = sorted(set(self.branches) - set(BRANCH_NAMES))
        check("stage.branches", not bad, f"some of {list(BRANCH_NAMES)}", list(self.branches))
        missing = sorted(set(self.branches) - set(self.loss_modes))
        check(
            "stage.loss_modes",
            not missing,
            f"given for every branch (missing {missing})",
            self.loss_modes,
        )


@dataclass(frozen=True)
class TokenizeStageConfig:
    """`stage` of `stage=tokenize` (configs/stage/tokenize.yaml)."""

    name: str = "tokenize"
    entry: str = ""
    num_workers: int = 2
    clips_per_shard: int = 256
    commit_seconds: float | None = 30.0
    shard_index: int = 0
    num_shards: int = 1
    ray_workers: int = 0  # > 0: that many Ray workers, each one shard_index of ray_workers
    ray_address: str | None = None  # None: a local Ray; "auto" / "ray://host:10001": a cluster
    device: str = (
        "auto"  # where the tokenizers run: auto (a GPU when one is visible), cpu, cuda[:i]
    )
    decode_timeout: float = 300.0  # s without any decoded clip before the run ends with an error
    retry_failed: bool = False  # also retry clips that failed with unchanged files

    def __post_init__(self) -> None:
        check("stage.num_workers", self.num_workers >= 0, ">= 0", self.num_workers)
        check(
            "stage.decode_timeout",
            self.decode_timeout > 0,
            "positive (seconds)",
            self.decode_timeout,
        )
        check(
            "stage.device",
            self.device in ("auto", "cpu") or self.device.startswith("cuda"),
            "auto, cpu or cuda[:i]",
            self.device,
        )
        check("stage.ray_workers", self.ray_workers >= 0, ">= 0", self.ray_workers)
        check(
            "stage.num_shards",
            not (self.ray_workers and self.num_shards > 1),
            "1 with stage.ray_workers (Ray splits the work itself)",
            self.num_shards,
        )
        check(
            "stage.commit_seconds",
            self.commit_seconds is None or self.commit_seconds > 0,
            "positive or null",
            self.commit_seconds,
        )
        check("stage.clips_per_shard", self.clips_per_shard >= 1, ">= 1", self.clips_per_shard)
        check("stage.num_shards", self.num_shards >= 1, ">= 1", self.num_shards)
        check(
            "stage.shard_index",
            0 <= self.shard_index < self.num_shards,
            f"in [0, stage.num_shards={self.num_shards})",
            self.shard_index,
        )


@dataclass(frozen=True)
class TokenizerStageConfig:
    """`stage` of `stage=video_tokenizer|audio_codec` (configs/stage/*.yaml)."""

    name: str
    entry: str = ""
    export: str | None = None
    max_steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 50
    val_fraction: float = 0.1
    max_clips: int | None = None
    fp16: bool = True
    torch_threads: int | None = None
    init_from: str | None = None  # a checkpoint of the same tokenizer to start from
    freeze: tuple[str, ...] = ()  # the tokenizer's parts kept as they are (e.g. motion_encoder)
    edge_weight: float = 0.5  # video tokenizer
    driver_jitter: float = 0.3  # motion tokenizer: colour jitter of the driver the codes see
    driver_jitter_grid: int = 1  # motion tokenizer: that jitter's lattice (1: one for the image)
    jitter_consistency: float = 0.0  # motion tokenizer: weight of "two jitters, the same codes"
    change_weight: float = 0.0  # motion tokenizer: more loss where the driver and reference differ
    segment_seconds: float = 0.64  # audio codec
    segments_per_clip: int = 4
    spectral_weight: float = 1.0
    ema_decay: float = 0.95

    def __post_init__(self) -> None:
        check("stage.max_steps", self.max_steps >= 1, ">= 1", self.max_steps)
        check("stage.batch_size", self.batch_size >= 1, ">= 1", self.batch_size)
        check("stage.lr", self.lr > 0, "positive", self.lr)
        check("stage.warmup_steps", self.warmup_steps >= 0, ">= 0", self.warmup_steps)
        check("stage.val_fraction", 0 < self.val_fraction < 1, "in (0, 1)", self.val_fraction)
        check("stage.driver_jitter", 0 <= self.driver_jitter < 1, "in [0, 1)", self.driver_jitter)
        check(
            "stage.driver_jitter_grid",
            self.driver_jitter_grid >= 1,
            ">= 1",
            self.driver_jitter_grid,
        )
        check("stage.change_weight", self.change_weight >= 0, ">= 0", self.change_weight)
        check(
            "stage.jitter_consistency",
            self.jitter_consistency >= 0,
            ">= 0",
            self.jitter_consistency,
        )
        check("stage.segment_seconds", self.segment_seconds > 0, "positive", self.segment_seconds)
        check(
            "stage.segments_per_clip", self.segments_per_clip >= 1, ">= 1", self.segments_per_clip
        )
        check("stage.ema_decay", 0 <= self.ema_decay < 1, "in [0, 1)", self.ema_decay)
        t = self.torch_threads
        check("stage.torch_threads", t is None or t >= 1, ">= 1 or null", t)


@dataclass(frozen=True)
class LMJob:
    """Everything an LM stage reads, typed at its entry point."""

    stage: LMStageConfig
    data: DataConfig
    model: dict[str, Any]
    """The `model` node as a plain dict (`vidchat.model.build_model` types and checks it)."""
    tokenizer: dict[str, Any]
    data_dir: str
    seed: int = 0
    tokenize: TokenizeStageConfig | None = None
    """How to tokenize when the shards are missing or stale (`stage.tokenize`, the tokenize
    stage's keys; None: `stage=tokenize`'s defaults)."""

    @property
    def shard_root(self) -> Path:
        names = (self.data.display_name, str(self.tokenizer.get("name")))
        return shard_dir(self.data_dir, *names, self.data.tokens_dir)


def shard_dir(
    data_dir: str | Path, data_name: str, tokenizer_name: str, tokens_dir: str | None = None
) -> Path:
    """Where the token shards of one data + tokenizer pair live: `tokens_dir` when set, else
    `<data_dir>/tokens/<data name>-<tokenizer name>`."""
    if tokens_dir:
        return Path(tokens_dir)
    if not data_name or not tokenizer_name:
        raise ConfigError("data.name and tokenizer.name must be set to locate the token shards")
    return Path(data_dir) / "tokens" / f"{data_name}-{tokenizer_name}"
