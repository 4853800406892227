"""`infer.py`'s options checked at the boundary, before the model loads or any work starts:
numbers in range, and an output that can be written without destroying anything. The sampling
options are not checked here: `SamplingConfig` checks them for every front end.

Every rule is one `VidchatError` line naming the option and what it allows.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from vidchat.errors import VidchatError
from vidchat.utils.atomic import check_writable_folder
from vidchat.utils.typed import check

DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")
"""The LM weight dtypes `--dtype` (infer, eval, web demo) accepts; auto = bfloat16 on a GPU,
float32 on a CPU (`vidchat.inference.loading.resolve_dtype`)."""


def check_dtype(name: str, option: str = "--dtype") -> None:
    check(option, name in DTYPE_NAMES, f"one of {', '.join(DTYPE_NAMES)}", name)


def _number(name: str, value: float, ok: bool, rule: str) -> None:
    if not (math.isfinite(value) and ok):
        raise VidchatError(f"{name} must be {rule}, got {value}")


def check_numbers(args: argparse.Namespace) -> None:
    """The options that are infer's own; the sampling options are `SamplingConfig`'s to check
    (`vidchat.inference.cli.sampling_from_args`), the same for infer, the web demo and eval."""
    _number("--max-seconds", args.max_seconds, args.max_seconds > 0, "a positive number of seconds")
    _number("--batch-size", args.batch_size, args.batch_size >= 1, ">= 1")


def check_output_file(output: Path, input_path: Path | None, overwrite: bool) -> None:
    """Refuse the input itself, a folder, an existing file (unless --overwrite), an unwritable place."""
    if input_path is not None and output.resolve() == input_path.resolve():
        raise VidchatError(f"--output {output} is the input clip; choose another file")
    if output.is_dir():
        raise VidchatError(f"--output {output} is a folder; give a file name such as answer.mp4")
    if output.exists() and not overwrite:
        raise VidchatError(f"--output {output} exists; pass --overwrite to replace it")
    check_writable_folder(output.parent, "--output")


def check_output_dir(folder: Path, names: list[str], overwrite: bool) -> None:
    """Batch mode: a writable folder, and no response file already there (unless --overwrite)."""
    check_writable_folder(folder, "--output-dir")
    taken = [n for n in names if (folder / n).exists()]
    if taken and not overwrite:
        raise VidchatError(
            f"--output-dir {folder} already holds {len(taken)} of the responses "
            f"(e.g. {taken[0]}); pass --overwrite to replace them"
        )


def check_capacity(max_seconds: float, max_seq_len: int, tokens_per_second: float) -> None:
    """--max-seconds against what the model's context holds (the answer alone, at the least)."""
    capacity = max_seq_len / tokens_per_second
    if max_seconds > capacity:
        raise VidchatError(
            f"--max-seconds {max_seconds:g} is more than this model holds: "
            f"max_seq_len {max_seq_len} is about {capacity:.1f} s of media"
        )


def default_context_seconds(
    max_seconds: float, max_seq_len: int, tokens_per_second: float
) -> float:
    """The partner seconds the context holds beside a `max_seconds` answer, with a 10% margin
    for the reference frame and markers."""
    return max(0.5, 0.9 * max_seq_len / tokens_per_second - max_seconds)


def check_context(
    context: float | None, max_seconds: float, max_seq_len: int, tokens_per_second: float
) -> float:
    """--context-seconds (None: the default) -> seconds, refused when it cannot fit."""
    limit = default_context_seconds(max_seconds, max_seq_len, tokens_per_second)
    if context is None:
        return limit
    _number("--context-seconds", context, context > 0, "a positive number of seconds")
    if context > limit:
        raise VidchatError(
            f"--context-seconds {context:g} does not fit beside a {max_seconds:g} s "
            f"answer in max_seq_len {max_seq_len}; at most {limit:.1f}"
        )
    return context
