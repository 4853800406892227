"""Benchmark (arithmetic, no timing): how much conversation fits in the `base` model's context.

    python bench/context.py [--model base] [--size 256] [--stride 16] [--fps 8]
                            [--audio-rate 75] [--codebooks 8] [--clip-seconds 14]

For a real-resolution layout (a `size` px face at `stride` -> (size/stride)^2 codes per frame,
EnCodec 24 kHz at 75 code frames/s with `codebooks` codebooks), prints the tokens and backbone
steps per media second and the seconds of conversation that fit in `model.max_seq_len`, for the
flat layout and for depth heads, and whether a SpeakerVid-5M clip of `clip-seconds` plus a
partner turn as long fits. Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from vidchat.cli import compose  # noqa: E402
from vidchat.model import LayoutConfig, SequenceLayout  # noqa: E402

HEADS = {"flat": ("flat", "flat"), "video_depth": ("depth", "flat"), "depth": ("depth", "depth")}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="base")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--audio-rate", type=float, default=75.0)
    parser.add_argument("--codebooks", type=int, default=8)
    parser.add_argument("--clip-seconds", type=float, default=14.0)
    return parser.parse_args()


def main() -> None:
    args = _args()
    max_len = int(compose("train", [f"model={args.model}"]).model.max_seq_len)
    grid = args.size // args.stride
    ref_steps = 2  # <bos>, <ref> (+ the reference frame: one step with a video head)
    print(
        f"model: {args.model}, max_seq_len: {max_len}; {args.size} px at stride {args.stride} "
        f"-> {grid}x{grid} codes per frame at {args.fps:g} fps; audio {args.codebooks} "
        f"codebooks at {args.audio_rate:g} Hz"
    )
    for name, (video_head, audio_head) in HEADS.items():
        layout = SequenceLayout(
            LayoutConfig(
                args.fps,
                (grid, grid),
                65536,
                args.audio_rate,
                args.codebooks,
                1024,
                video_head=video_head,
                audio_head=audio_head,
            )
        )
        steps = layout.plan.steps_per_second()
        ref = ref_steps + (1 if video_head == "depth" else grid * grid)
        seconds = (max_len - ref - 2) / steps  # minus the two role markers
        fits = seconds >= 2 * args.clip_seconds
        print(f"tokens/s {name}: {layout.tokens_per_second:.0f}")
        print(f"backbone steps/s {name}: {steps:.0f}")
        print(f"context seconds {name}: {seconds:.1f}")
        print(f"fits {args.clip_seconds:g} s clip + partner turn {name}: {'yes' if fits else 'no'}")


if __name__ == "__main__":
    main()
