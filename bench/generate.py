"""Benchmark: generation speed of the demo-sized model: the KV cache, and cost against resolution.

    python bench/generate.py [--model tiny] [--context 1000] [--repeats 3] [--threads 1]

Part 1, the KV cache, on the 64 px demo configuration (`experiment=demo64`):
Builds `configs/model/<model>.yaml` with that experiment's heads (MaskGIT video with its copy
path, depth audio) for 8x8 codes per frame (random weights: speed does not depend on them),
lays out a prompt of
about `--context` tokens (reference frame + a partner turn), and times
`generate(..., max_chunks=1)` (one 0.5 s chunk; the time includes the prompt's prefill) with
the KV cache and with the tests' uncached reference (`tests/model/uncached.py`: the whole prefix
again at every token), alternating, medians.
Real-time factor = seconds of compute per second of media = media tokens/s ÷ generated tokens/s
(< 1: faster than real time), the same definition `infer.py` reports.

Part 2, resolution: for 4x4, 8x8, 16x16 and 32x32 video codes per frame (8 fps, audio 2 x 1024
codes at 25 Hz), with the `flat` layout, with depth heads (`depth`: video and audio) and with a
frame head, times one 0.5 s chunk after a 1 s partner turn (prefill included, KV cache, random
weights; `maskgit`: a MaskGIT frame head with 8 refinement passes per frame, audio depth), each
with the eager decode steps and with the fast ones (`vidchat.model.runner`: compiled once by
`--backend`, CUDA graphs on a GPU; the first round warms up and compiles), and reports the
real-time factor (compute seconds per media second) and the backbone steps per media second.

Part 3: the shipped demo responder's first-chunk latency through `ResponderPipeline.stream`,
eager and fast (`--no-first-chunk` skips it).

Part 4 (`bench/motion_rtf.py`; `--no-motion` skips it): a motion video code at 64 and 256 px,
the same LM with N codes per frame plus the renderer at each size: `rtf motion <S>px <device>`.

Parts 2 and 3 run on the CPU and, with CUDA, on the GPU (`--device`). Ends with `name: value`
lines: `rtf <head> <H>x<W> <device> eager|fast`, `fast speedup <head> <H>x<W> <device>`,
`compile s <head> <H>x<W> <device>` (the first fast call), `steps/s <head> <H>x<W>`,
`ratio <head> 16x16 / flat 4x4 <device>` and `first chunk s <device> eager|fast` (side by side
in the same run, so the machine's load cancels).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from motion_rtf import motion_rtf, partner_prompt, timed  # noqa: E402

from tests.model.uncached import uncached  # noqa: E402
from vidchat.cli import compose  # noqa: E402
from vidchat.model import LayoutConfig, Role, Segment, SequenceLayout, build_model  # noqa: E402
from vidchat.model.generate import SamplingConfig, generate  # noqa: E402
from vidchat.model.runner import EAGER, StepRunner  # noqa: E402


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny", help="configs/model/<name>.yaml")
    parser.add_argument(
        "--context", type=int, default=1000, help="approximate prompt length in tokens"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument(
        "--device", default="all", help="cpu, cuda, or all (the CPU, and CUDA when available)"
    )
    parser.add_argument(
        "--grids",
        default=",".join(map(str, GRIDS)),
        help="video codes per side for the resolution table, e.g. 8,16",
    )
    parser.add_argument(
        "--dtype",
        default="float32",
        help="weights, cast once (as infer.py --dtype): float32, bfloat16",
    )
    parser.add_argument(
        "--backend",
        default="inductor",
        help="torch.compile backend of the fast runner (aot_eager: quick to "
        "compile, for smoke runs)",
    )
    parser.add_argument(
        "--heads",
        default=",".join(HEADS),
        help=f"heads of the resolution table, comma-separated: {', '.join(HEADS)}",
    )
    parser.add_argument(
        "--no-first-chunk",
        dest="first_chunk",
        action="store_false",
        help="skip the shipped demo model's first-chunk latency",
    )
    parser.add_argument(
        "--no-motion",
        dest="motion",
        action="store_false",
        help="skip the motion code's cost at 64 and 256 px",
    )
    args = parser.parse_args()
    if args.device not in ("all", "cpu", "cuda") or args.dtype not in ("float32", "bfloat16"):
        sys.exit(f"error: --device {args.device} / --dtype {args.dtype}: see --help")
    args.dtype = getattr(torch, args.dtype)
    try:
        args.grids = tuple(int(g) for g in args.grids.split(","))
    except ValueError:
        sys.exit(f"error: --grids {args.grids}: codes per side, comma-separated, e.g. 8,16")
    args.heads = tuple(args.heads.split(","))
    if not set(args.heads) <= set(HEADS):
        sys.exit(f"error: --heads {','.join(args.heads)}: choose from {', '.join(HEADS)}")
    return args


def _prompt(layout: SequenceLayout, context: int):
    """A random partner turn of about `context` tokens after `<bos> <ref>` and the ref codes."""
    h, w = layout.cfg.video_grid
    seconds = max(0.5, (context - 2 - h * w) / layout.tokens_per_second)
    T, Ta = round(seconds * 8), round(seconds * 25)
    g = torch.Generator().manual_seed(0)
    partner = Segment(
        Role.PARTNER,
        torch.randint(0, 1024, (T, h, w), generator=g),
        torch.randint(0, 1024, (2, Ta), generator=g),
    )
    return layout.prompt([partner], ref=torch.randint(0, 1024, (h, w), generator=g))


GRIDS = (4, 8, 16, 32)
HEADS = {
    "flat": ("flat", "flat"),
    "depth": ("depth", "depth"),
    "maskgit": ("maskgit", "depth"),
    "maskgit-small": ("maskgit", "depth"),
}
# per head: model overrides and frame-head passes (`maskgit-small`: a 96-wide, one-block frame
# and depth head with 4 passes per frame)
HEAD_OPTIONS = {
    "maskgit-small": (
        [
            "model.heads.maskgit.dim=96",
            "model.heads.maskgit.layers=1",
            "model.heads.depth.dim=96",
            "model.heads.depth.layers=1",
        ],
        4,
    )
}


def resolution_table(
    model_name: str,
    device: str,
    repeats: int,
    dtype: torch.dtype = torch.float32,
    grids: tuple[int, ...] = GRIDS,
    backend: str = "inductor",
    heads: tuple[str, ...] = tuple(HEADS),
) -> dict[str, str]:
    """`rtf <head> <H>x<W> <device> eager|fast` and backbone `steps/s` lines for every grid and
    head (see the module docstring); within a grid the heads and both runners alternate, repeat
    by repeat, and each reports its median. The first round warms up (and compiles)."""
    lines = {}
    for grid in grids:
        runs = {
            head: _head_run(
                model_name, device, grid, HEADS[head], HEAD_OPTIONS.get(head, ([], 8))[0], dtype
            )
            for head in heads
        }
        runners = {head: {"eager": EAGER, "fast": _fast(backend, device)} for head in runs}
        times: dict[str, list[float]] = {f"{h} {r}": [] for h in runs for r in ("eager", "fast")}
        for r in range(1 + (repeats if grid <= 16 else 1)):
            for head, (model, layout, prompt) in runs.items():
                sampling = SamplingConfig(seed=0, refine_steps=HEAD_OPTIONS.get(head, ([], 8))[1])
                for name, runner in runners[head].items():
                    dt = _timed(
                        device,
                        partial(
                            generate,
                            model,
                            layout,
                            prompt,
                            max_chunks=1,
                            sampling=sampling,
                            runner=runner,
                        ),
                    )
                    if r:
                        times[f"{head} {name}"].append(dt)
                    elif name == "fast":
                        lines[f"compile s {head} {grid}x{grid} {device}"] = f"{dt:.1f}"
        for head, (_, layout, _) in runs.items():
            for name in ("eager", "fast"):
                rtf = statistics.median(times[f"{head} {name}"]) / float(layout.cfg.chunk_seconds)
                lines[f"rtf {head} {grid}x{grid} {device} {name}"] = f"{rtf:.3f}"
            lines[f"steps/s {head} {grid}x{grid}"] = f"{layout.plan.steps_per_second():.0f}"
    return lines


def _fast(backend: str, device: str) -> StepRunner:
    """The fast runner: `backend`, with CUDA graphs (`reduce-overhead`) on a GPU."""
    return StepRunner(backend, "reduce-overhead" if device == "cuda" else None)


def _timed(device: str, call) -> float:
    return timed(device, call)[0]


def _head_run(
    model_name: str,
    device: str,
    grid: int,
    heads: tuple[str, str],
    extra: list[str] = (),
    dtype: torch.dtype = torch.float32,
):
    """(model, layout, prompt) for one grid and head pair, random weights."""
    layout = SequenceLayout(
        LayoutConfig(8, (grid, grid), 1024, 25, 2, 1024, video_head=heads[0], audio_head=heads[1])
    )
    torch.manual_seed(0)
    overrides = [f"model={model_name}", "model.max_seq_len=16384", *extra]
    model = build_model(compose("train", overrides).model, layout).eval().to(device, dtype)
    return model, layout, partner_prompt(layout, seconds=1.0)


def _cache_lines(run, repeats: int, prompt_len: int, media_tps: float) -> dict[str, str]:
    """Part 1 on the CPU: one chunk with the KV cache against recomputing the prefix,
    alternating `repeats` times (`run(use_cache) -> (seconds, generated tokens)`)."""
    run(True)  # warm up
    times: dict[str, list[float]] = {"cache": [], "no_cache": []}
    n_tokens = 0
    for _ in range(repeats):
        for name in times:
            dt, n_tokens = run(name == "cache")
            times[name].append(dt)
    tps = {name: n_tokens / statistics.median(t) for name, t in times.items()}
    print(
        f"prompt tokens: {prompt_len}, generated tokens per run: {n_tokens}, "
        f"media tokens/s: {media_tps:.0f}"
    )
    for name, t in times.items():
        print(f"{name} s: " + " ".join(f"{x:.3f}" for x in t))
    return {
        "generate cpu tokens/s cache": f"{tps['cache']:.1f}",
        "generate cpu tokens/s no cache": f"{tps['no_cache']:.1f}",
        "generate cpu cache speedup": f"{tps['cache'] / tps['no_cache']:.1f}",
        "generate cpu real-time factor (cache)": f"{media_tps / tps['cache']:.2f}",
        "rtf demo64 8x8": f"{media_tps / tps['cache']:.2f}",
    }


def first_chunk(device: str, backend: str, repeats: int) -> dict[str, str]:
    """`first chunk s <device> eager|fast`: the shipped demo responder through
    `ResponderPipeline.stream` on a 1 s random partner clip (tokenizers, prompt, prefill, first
    chunk, its decoding), medians after a warm-up (which compiles)."""
    import numpy as np

    from vidchat.inference.loading import load_pipeline
    from vidchat.inference.pipeline import StreamStats
    from vidchat.media import Clip

    pipe = load_pipeline(None, device=device, dtype="auto", decode="eager")
    g = np.random.default_rng(0)
    fps, (h, w) = pipe.fps, pipe.frame_size
    clip = Clip(
        g.integers(0, 255, (int(fps), h, w, 3), dtype=np.uint8),
        g.standard_normal(pipe.sample_rate).astype(np.float32) * 0.1,
        fps,
        pipe.sample_rate,
        1.0,
    )
    runners = {"eager": EAGER, "fast": _fast(backend, device)}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(1 + repeats):
        for name, runner in runners.items():
            pipe.runner, stats = runner, StreamStats()
            next(
                iter(
                    pipe.stream(clip, max_seconds=0.5, sampling=SamplingConfig(seed=0), stats=stats)
                )
            )
            if r:
                times[name].append(stats.first_chunk_s)
    return {
        f"first chunk s {device} {name}": f"{statistics.median(t):.3f}" for name, t in times.items()
    }


def main() -> None:
    args = _args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_cfg = compose("train", [f"model={args.model}", "experiment=demo64"]).model
    heads = dict(video_head=model_cfg.layout.video_head, audio_head=model_cfg.layout.audio_head)
    layout = SequenceLayout(LayoutConfig(8, (8, 8), 1024, 25, 2, 1024, **heads))  # demo, 64 px
    torch.manual_seed(0)
    model = build_model(model_cfg, layout).eval().to(args.dtype)
    prompt = _prompt(layout, args.context)
    sampling = SamplingConfig(seed=0)

    def run(use_cache: bool, device: str = "cpu") -> tuple[float, int]:
        m = model.to(device)
        if device == "cuda":
            torch.cuda.synchronize()
        reference = contextlib.nullcontext() if use_cache else uncached()
        t0 = time.perf_counter()
        with reference:
            out = generate(m, layout, prompt, max_chunks=1, sampling=sampling)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, int((out.tokens != 0).sum())

    cuda = torch.cuda.is_available() and args.device in ("all", "cuda")
    devices = (["cpu"] if args.device in ("all", "cpu") else []) + (["cuda"] if cuda else [])
    if not devices:
        sys.exit("error: --device cuda, but CUDA is not available here")
    media_tps = layout.tokens_per_second
    print(
        f"model: {args.model} ({model.num_params() / 1e6:.2f}M params, {heads}, "
        f"{args.dtype}), threads: {torch.get_num_threads()}"
    )
    lines = _cache_lines(run, args.repeats, len(prompt), media_tps) if "cpu" in devices else {}
    for device in devices:
        table = resolution_table(
            args.model, device, args.repeats, args.dtype, args.grids, args.backend, args.heads
        )
        compared = args.heads if {4, 16} <= set(args.grids) and "flat" in args.heads else ()
        for head in compared:  # a head at 16x16 vs flat 4x4
            ratio = float(table[f"rtf {head} 16x16 {device} eager"]) / float(
                table[f"rtf flat 4x4 {device} eager"]
            )
            table[f"ratio {head} 16x16 / flat 4x4 {device}"] = f"{ratio:.2f}"
        for head in args.heads:
            for grid in args.grids:
                at = f"{head} {grid}x{grid} {device}"
                speedup = float(table[f"rtf {at} eager"]) / float(table[f"rtf {at} fast"])
                table[f"fast speedup {at}"] = f"{speedup:.2f}"
        lines.update(table)
        if args.first_chunk:
            lines.update(first_chunk(device, args.backend, args.repeats))
        if args.motion:
            lines.update(motion_rtf(args.model, device, args.repeats, args.dtype))
    for name, value in lines.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
