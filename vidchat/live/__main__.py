"""`python -m vidchat.live --input partner.mp4 --output live.mp4`: the live loop driven from a
recorded partner, as a camera and microphone would feed it; the output is what a live partner
would have received (listening frames, answers as they came, barge-ins where the recording
speaks over an answer), with the partner beside it.

By default the run is as fast as the model allows and the same every time; `--realtime` paces it
by the wall clock, as the live page does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vidchat.cli import ArgumentParser, exit_on_user_error, stop_on_sigterm


def parse_args(argv: list[str] | None):
    p = ArgumentParser(prog="python -m vidchat.live", description=__doc__)
    p.add_argument("--input", type=Path, required=True, help="the partner's clip (video + audio)")
    p.add_argument("--output", type=Path, required=True, help="the mp4 to write")
    p.add_argument(
        "--reference", type=Path, default=None, help="responder face (default: the LM's)"
    )
    p.add_argument("--checkpoint", default=None, help="LM stem (default: SFT export or demo LM)")
    p.add_argument("--device", default="auto")
    p.add_argument("--realtime", action="store_true", help="pace by the wall clock")
    p.add_argument("--silence-seconds", type=float, default=0.7, help="silence that ends a turn")
    p.add_argument("--answer-seconds", type=float, default=8.0, help="longest answer")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return p.parse_args(argv)


def run(args) -> Path:
    from vidchat.inference.loading import load_pipeline
    from vidchat.inference.options import check_output_file
    from vidchat.live.config import LiveConfig
    from vidchat.live.drive import drive
    from vidchat.live.loop import LiveLoop
    from vidchat.live.responders import ModelResponder
    from vidchat.media import write_clip

    check_output_file(args.output, args.input, args.overwrite)
    cfg = LiveConfig(silence_seconds=args.silence_seconds, answer_max_seconds=args.answer_seconds)
    pipe = load_pipeline(args.checkpoint, device=args.device)
    partner = pipe.read_partner(args.input)
    reference = pipe.read_reference(args.reference) if args.reference else None
    responder = ModelResponder(pipe, reference, answer_max_seconds=cfg.answer_max_seconds)
    with LiveLoop(responder, cfg) as loop:
        rec = drive(
            loop,
            partner,
            tail_seconds=cfg.answer_max_seconds,
            realtime=args.realtime,
            progress=True,
        )
    frames = rec.frames
    shown = np.concatenate([_partner_frames(partner, len(frames)), frames], axis=2)
    out = write_clip(args.output, shown, rec.waveform(), loop.fps, loop.sample_rate)
    turns = sum(e.kind == "turn_end" for e in loop.events)
    barge = sum(e.kind == "barge_in" for e in loop.events)
    print(f"{out}: {len(frames) / loop.fps:.1f} s, {turns} turn(s) answered, {barge} barge-in(s)")
    return out


def _partner_frames(partner, n: int) -> np.ndarray:
    """The partner's frames padded with their last one to `n` (the output's length)."""
    pad = max(0, n - len(partner.frames))
    return np.concatenate([partner.frames[:n], np.repeat(partner.frames[-1:], pad, axis=0)])


def main(argv: list[str] | None = None) -> None:
    stop_on_sigterm()
    args = exit_on_user_error(lambda: parse_args(argv))
    exit_on_user_error(lambda: run(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
