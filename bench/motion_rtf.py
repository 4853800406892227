"""Part 4 of `bench/generate.py`: what a motion video code costs at 64 and at 256 px.

The LM is the same at every frame size: N motion codes per frame (`MotionConfig.num_codes`), the
64 px demo layout's heads (MaskGIT video, depth audio), random weights. Only the renderer grows
with the frame: the shipped motion tokenizer's architecture (`experiment=demo64_motion`) at each
size, random weights. Each repeat generates one 0.5 s chunk after a 1 s partner turn (prefill
included) and renders its frames on a reference at every size; medians. The real-time factor
of a size is the LM's chunk plus its frames rendered at that size, per media second.
Lines: `rtf motion <S>px <device>` (LM plus renderer, compute seconds per media second),
`render ms per frame motion <S>px <device>` and `ratio motion 256px / 64px <device>`.

Alone: `python bench/motion_rtf.py [--model tiny] [--repeats 5] [--threads 1] [--device cpu]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from any folder

from vidchat.cli import compose
from vidchat.model import LayoutConfig, Role, Segment, SequenceLayout, build_model
from vidchat.model.generate import SamplingConfig, generate
from vidchat.tokenizers.motion import MotionConfig, MotionTokenizer

SIZES = (64, 256)


def motion_layout(num_codes: int, codebook: int) -> SequenceLayout:
    """The 64 px demo layout (8 fps, 0.5 s chunks, 2 x 1024 audio codes at 25 Hz, MaskGIT video
    and depth audio heads) with N motion codes per frame instead of 8x8 appearance codes."""
    cfg = LayoutConfig(
        8, (1, num_codes), codebook, 25, 2, 1024, video_head="maskgit", audio_head="depth"
    )
    return SequenceLayout(cfg)


def partner_prompt(layout: SequenceLayout, seconds: float):
    """A reference frame and a random partner turn of `seconds`, in the layout's codebooks
    (`bench/generate.py`'s prompt too)."""
    c = layout.cfg
    h, w = c.video_grid
    g = torch.Generator().manual_seed(0)
    T, Ta = round(seconds * c.video_frame_rate), round(seconds * c.audio_frame_rate)
    V, A = c.video_codebook_size, c.audio_codebook_size
    video = torch.randint(0, V, (T, h, w), generator=g)
    partner = Segment(Role.PARTNER, video, torch.randint(0, A, (2, Ta), generator=g))
    return layout.prompt([partner], ref=torch.randint(0, V, (h, w), generator=g))


def timed(device: str, call) -> tuple[float, object]:
    """(seconds `call()` took, synchronised on a GPU, its result)."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = call()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def shipped_config(size: int) -> MotionConfig:
    """The shipped motion tokenizer's architecture (`experiment=demo64_motion`) at `size` px:
    one config serves every frame size."""
    model = OmegaConf.to_container(compose("train", ["experiment=demo64_motion"]).tokenizer)
    return MotionConfig(frame_size=size, **model["video"]["model"])


def motion_rtf(
    model_name: str, device: str, repeats: int, dtype: torch.dtype = torch.float32
) -> dict[str, str]:
    """The `rtf motion <S>px` lines (see the module docstring)."""
    renderers = {s: MotionTokenizer(shipped_config(s)).eval().to(device) for s in SIZES}
    spec = renderers[SIZES[0]].spec
    layout = motion_layout(spec.grid[1], spec.codebook_size)
    torch.manual_seed(0)
    overrides = [f"model={model_name}", "experiment=demo64", "model.max_seq_len=16384"]
    model = build_model(compose("train", overrides).model, layout).eval().to(device, dtype)
    prompt = partner_prompt(layout, 1.0)
    step = partial(generate, model, layout, prompt, 1, SamplingConfig(seed=0))
    references = {s: torch.randint(0, 256, (s, s, 3), dtype=torch.uint8) for s in SIZES}
    lm_times: list[float] = []
    render_times: dict[int, list[float]] = {s: [] for s in SIZES}
    for r in range(1 + repeats):  # the first round warms up
        lm_s, out = timed(device, step)
        codes = out.video[0][None]  # [1,t,1,N]: the same codes rendered at every size
        for size in SIZES:
            render_s, _ = timed(device, partial(renderers[size].decode, codes, references[size]))
            if r:
                render_times[size].append(render_s / max(1, codes.shape[1]))
        if r:
            lm_times.append(lm_s)
    lines, chunk = {}, float(layout.cfg.chunk_seconds)
    frames = chunk * layout.cfg.video_frame_rate
    lm = statistics.median(lm_times)
    lines[f"lm s per chunk motion {device}"] = f"{lm:.3f}"
    for size in SIZES:
        per_frame = statistics.median(render_times[size])
        lines[f"rtf motion {size}px {device}"] = f"{(lm + per_frame * frames) / chunk:.3f}"
        lines[f"render ms per frame motion {size}px {device}"] = f"{1000 * per_frame:.1f}"
    big, small = (float(lines[f"rtf motion {s}px {device}"]) for s in (SIZES[-1], SIZES[0]))
    lines[f"ratio motion {SIZES[-1]}px / {SIZES[0]}px {device}"] = f"{big / small:.2f}"
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="tiny", help="configs/model/<name>.yaml (tiny: the shipped)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name, value in motion_rtf(args.model, args.device, args.repeats).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
