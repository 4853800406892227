"""`DemoConfig`: the web demo's options, checked before the server starts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidchat.inference.options import check_dtype
from vidchat.utils.typed import check


@dataclass(frozen=True)
class DemoConfig:
    checkpoint: str | None = (
        None  # consolidated LM stem; None = this clone's SFT export or the demo LM
    )
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False  # a public Gradio link (off: nothing leaves the machine)
    max_upload_mb: float = 50.0  # uploads above this are refused by the server
    max_input_seconds: float = 30.0  # partner turns longer than this are refused
    max_answer_seconds: float = 10.0  # the "maximum length" slider's ceiling
    queue_size: int = 16  # requests waiting beyond the one being generated
    delete_after_s: int = 900  # uploads and answers older than this are deleted
    demo_data: str = "data_cache/demo"  # demo world: partner clips and identities to pick from
    device: str = "auto"
    dtype: str = "auto"  # LM weights: auto (bfloat16 on a GPU, float32 on a CPU), float32, ...

    def __post_init__(self) -> None:
        check("--port", 0 <= self.port <= 65535, "in [0, 65535]", self.port)
        for name in ("max_upload_mb", "max_input_seconds", "max_answer_seconds"):
            value = getattr(self, name)
            check(
                f"--{name.replace('_', '-')}",
                math.isfinite(value) and value > 0,
                "a positive number",
                value,
            )
        check_dtype(self.dtype)
        check("--queue-size", self.queue_size >= 1, ">= 1", self.queue_size)
        check("--delete-after-s", self.delete_after_s >= 60, ">= 60", self.delete_after_s)
