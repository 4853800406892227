"""`EvalConfig`: the typed `configs/eval.yaml`, made once at `python -m vidchat.eval`'s entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidchat.data.config import DataConfig
from vidchat.inference.options import check_dtype
from vidchat.model.generate import SamplingConfig
from vidchat.model.runner import DECODE_CHOICES
from vidchat.utils.config import to_plain
from vidchat.utils.typed import check, from_node

SYSTEMS = ("model", "untrained", "tokenized", "ground_truth")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class EvalConfig:
    data: DataConfig
    checkpoint: str | None = None
    """Consolidated LM checkpoint stem; None = this folder's SFT export, else the demo LM."""
    device: str = "auto"
    dtype: str = "auto"
    """The LM's weights: auto (bfloat16 on a GPU, float32 on a CPU), float32, bfloat16, float16."""
    decode: str = "auto"
    """Decode steps: eager, fast (compiled once and replayed), auto (fast on a GPU)."""
    split: str = "test"
    branches: tuple[str, ...] = ("dialogue", "multi_turn")
    max_pairs: int | None = None
    batch_size: int = 4
    seed: int = 0
    max_seconds: float | None = None
    """Answer length; None = as long as each ground-truth responder turn."""
    systems: tuple[str, ...] = SYSTEMS
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """`sampling:` as `SamplingConfig.from_dict` reads and checks it (temperature 0 = greedy)."""
    metrics: tuple[str, ...] = ()
    metric_options: dict = field(default_factory=dict)
    output_dir: str = "outputs/eval"
    imports: tuple[str, ...] = ()
    """The user's modules, imported before the metrics are looked up (`vidchat.utils.imports`)."""

    def __post_init__(self) -> None:
        check("split", self.split in SPLITS, f"one of {list(SPLITS)}", self.split)
        bad = sorted(set(self.systems) - set(SYSTEMS))
        check("systems", not bad, f"some of {list(SYSTEMS)}", list(self.systems))
        check_dtype(self.dtype, "dtype")
        check(
            "decode", self.decode in DECODE_CHOICES, f"one of {list(DECODE_CHOICES)}", self.decode
        )
        check("batch_size", self.batch_size >= 1, ">= 1", self.batch_size)
        check(
            "max_pairs",
            self.max_pairs is None or self.max_pairs >= 1,
            ">= 1 or null",
            self.max_pairs,
        )
        m = self.max_seconds
        check("max_seconds", m is None or m > 0, "positive or null", m)

    @classmethod
    def from_cfg(cls, cfg: Any) -> EvalConfig:
        root = {k: v for k, v in to_plain(cfg).items() if k not in ("paths", "hydra")}
        root["data"] = DataConfig.from_cfg(root.get("data"))
        root["sampling"] = SamplingConfig.from_dict(root.get("sampling") or {})
        return from_node(cls, root, "eval")

    def sampling_config(self) -> SamplingConfig:
        return self.sampling

    def options(self, metric: str) -> dict[str, Any]:
        """`metric_options.<metric>` as keyword arguments."""
        return dict(self.metric_options.get(metric) or {})
