"""`python infer.py`: a partner's clip in, the responder's talking video out.

    python infer.py --input clip.mp4                       # writes clip.response.mp4 beside it
    python infer.py --input clip.mp4 --reference face.png --side-by-side --seed 3
    python infer.py --input clip.mp4 --sample video.temperature=0.8 --sample audio.top_k=50
    python infer.py --manifest test.jsonl --output-dir out/ --batch-size 4

Single-clip mode streams: each chunk is decoded and appended to the mp4 as soon as the model has
finished it, and the run ends with the first-chunk latency and the real-time factor. The output
file appears only when complete. Errors in the input, the checkpoint or the options print one line
and exit with code 2.

Long inputs: the responder answers the last `--context-seconds` of the partner clip (default: as
much as the model's `max_seq_len` holds beside a `--max-seconds` answer). Only that window is
decoded and tokenized, so a 20-minute or hour-long recording costs what its last seconds cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import Field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import vidchat.inference.options as options
from vidchat.cli import ArgumentParser, add_import_argument, exit_on_user_error, stop_on_sigterm
from vidchat.data.pairs_jsonl import read_pairs_jsonl
from vidchat.data.records import ClipRecord
from vidchat.errors import VidchatError
from vidchat.inference.loading import load_pipeline
from vidchat.inference.pipeline import ResponderPipeline, StreamStats
from vidchat.media import Clip, crop_resize, probe, write_clip
from vidchat.media.stream_writer import ClipStreamWriter
from vidchat.model.generate import TOKEN_KINDS, SamplingConfig, TokenSampling, option_fields
from vidchat.model.runner import DECODE_CHOICES
from vidchat.utils.imports import import_user_modules


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(prog="infer.py", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=Path, help="partner clip (any container/fps/size PyAV reads)")
    src.add_argument("--manifest", type=Path, help="JSONL of pairs for batch mode (see README)")
    p.add_argument("--output", type=Path, help="response mp4 (default: <input>.response.mp4)")
    p.add_argument("--overwrite", action="store_true", help="replace existing response files")
    add_import_argument(p)
    p.add_argument(
        "--output-dir",
        type=Path,
        default=Path("outputs/responses"),
        help="batch mode output folder",
    )
    p.add_argument(
        "--reference", type=Path, help="responder face image (default: the checkpoint's)"
    )
    p.add_argument(
        "--checkpoint", type=Path, help="consolidated LM checkpoint (default: sft run, else demo)"
    )
    p.add_argument(
        "--side-by-side", action="store_true", help="partner left, responder right, one timeline"
    )
    p.add_argument(
        "--max-seconds", type=float, default=5.0, help="longest response (stops earlier at <eot>)"
    )
    p.add_argument(
        "--context-seconds",
        type=float,
        default=None,
        help="answer the last N seconds of the partner clip (default: what the model's context "
        "holds beside the answer); a longer input is read from there on, never whole",
    )
    add_sampling_options(p)
    add_runtime_options(p)
    return p.parse_args(argv)


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """Where and how the LM runs: batch size, device, dtype, decode steps, cache."""
    p.add_argument("--batch-size", type=int, default=4, help="batch mode: pairs generated together")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument(
        "--dtype",
        default="auto",
        help="LM weights: auto (bfloat16 on a GPU, float32 on a CPU), float32, bfloat16 or float16",
    )
    p.add_argument(
        "--decode",
        default="auto",
        choices=DECODE_CHOICES,
        help="decode steps: eager, or fast (compiled once with torch.compile and "
        "replayed, CUDA graphs on a GPU: the same tokens, after a compilation "
        "of a minute or so); auto = fast for a --manifest on a GPU, else eager",
    )


def _add_option(p: argparse.ArgumentParser, option: Field, where: str = "") -> None:
    """`--top-k` for the option `top_k`: its type, default and help from `SamplingConfig`."""
    flag = "--" + option.name.replace("_", "-")
    help_text = option.metadata["help"] + where
    p.add_argument(flag, type=type(option.default), default=option.default, help=help_text)


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """The sampling flags, each made from its option in `SamplingConfig`:
    `--temperature/--top-k/--top-p` for every token kind, `--sample` for one kind, then
    `--seed/--refine-steps/--guidance`. Their values are checked by `SamplingConfig` alone."""
    for option in option_fields(TokenSampling):
        _add_option(p, option, ", for every token kind")
    keys = "|".join(f.name for f in option_fields(TokenSampling))
    p.add_argument(
        "--sample",
        action="append",
        default=[],
        metavar="KIND.KEY=VALUE",
        help=f"per-kind override, KIND in {'|'.join(TOKEN_KINDS)}, KEY in {keys}, "
        "e.g. video.temperature=0.8",
    )
    for option in option_fields(SamplingConfig):
        _add_option(p, option)


def sampling_from_args(args: argparse.Namespace) -> SamplingConfig:
    """--temperature/--top-k/--top-p for every kind, then the --sample overrides; checked (and
    converted) by `SamplingConfig.from_dict`, as the web demo's and the eval's options are."""
    base = {f.name: getattr(args, f.name) for f in option_fields(TokenSampling)}
    cfg: dict[str, Any] = {kind: dict(base) for kind in TOKEN_KINDS}
    for item in args.sample:
        key, sep, value = item.partition("=")
        kind, dot, name = key.partition(".")
        if not sep or not dot or kind not in cfg or name not in base:
            raise VidchatError(
                f"--sample {item!r}: expected KIND.KEY=VALUE with KIND in "
                f"{'|'.join(TOKEN_KINDS)} and KEY in {'|'.join(base)}"
            )
        cfg[kind][name] = value
    scalars = {f.name: getattr(args, f.name) for f in option_fields(SamplingConfig)}
    return SamplingConfig.from_dict({**cfg, **scalars})


def recent_window(source: Path | ClipRecord, seconds: float) -> ClipRecord:
    """The last `seconds` of a clip (a file, or a record's own window): only that window is
    decoded (a seek, then decoding from there), so memory and time do not grow with the
    input's length."""
    record = source if isinstance(source, ClipRecord) else ClipRecord(source.stem, str(source))
    end = (
        record.start + record.duration
        if record.duration is not None
        else probe(record.path).duration or 0.0
    )
    start = max(record.start, end - seconds)
    return dataclasses.replace(record, start=start, duration=(end - start) or None)


def side_by_side_prefix(pipe: ResponderPipeline, partner: Clip, reference: np.ndarray | None):
    """The partner's turn: partner left, the responder's still reference face right."""
    ref = pipe.default_reference if reference is None else reference
    right = (
        np.zeros_like(partner.frames[0])
        if ref is None
        else crop_resize(ref, partner.frames.shape[1:3])
    )
    frames = np.concatenate([partner.frames, np.broadcast_to(right, partner.frames.shape)], axis=2)
    return frames, partner.audio


def respond_to_clip(pipe: ResponderPipeline, args: argparse.Namespace) -> Path:
    """Single-clip mode: stream the response into the output mp4."""
    partner = pipe.read_partner(recent_window(args.input, args.context_seconds))
    reference = pipe.read_reference(args.reference) if args.reference else None
    output = args.output  # checked by options.check_output_file
    h, w = pipe.frame_size
    size = (h, 2 * w) if args.side_by_side else (h, w)
    stats = StreamStats()
    chunks = pipe.stream(
        partner,
        reference,
        max_seconds=args.max_seconds,
        sampling=sampling_from_args(args),
        stats=stats,
    )
    last_partner = partner.frames[-1]
    with ClipStreamWriter(output, fps=pipe.fps, sample_rate=pipe.sample_rate, size=size) as out:
        if args.side_by_side:
            out.write(*side_by_side_prefix(pipe, partner, reference))
        for chunk in tqdm(
            chunks, total=pipe.max_chunks(args.max_seconds), desc="responding", unit="chunk"
        ):
            frames = chunk.frames
            if args.side_by_side:
                left = np.broadcast_to(last_partner, frames.shape)
                frames = np.concatenate([left, frames], axis=2)
            out.write(frames, chunk.audio)
        # The codec's frames may end a few ms before the video's: pad to the same duration.
        video_s = out.frames_written / pipe.fps
        missing = int(round(video_s * pipe.sample_rate)) - out.samples_written
        if missing > 0:
            out.write(np.zeros((0, *size, 3), np.uint8), np.zeros(missing, np.float32))
    print(f"wrote {output}")
    print(f"first chunk latency s: {stats.first_chunk_s:.3f}")
    print(f"real-time factor: {stats.real_time_factor:.3f} (compute s per output s)")
    return output


def respond_to_manifest(
    pipe: ResponderPipeline, args: argparse.Namespace, pairs: list
) -> list[dict[str, Any]]:
    """Batch mode: `--batch-size` pairs through the model at once; a failing pair is reported, skipped."""
    sampling = sampling_from_args(args)
    results: list[dict[str, Any]] = []
    bar = tqdm(total=len(pairs), desc="responding", unit="pair")
    for start in range(0, len(pairs), args.batch_size):
        batch, clips, refs = [], [], []
        for pair in pairs[start : start + args.batch_size]:
            try:
                clips.append(pipe.read_partner(recent_window(pair.partner, args.context_seconds)))
                refs.append(pipe.read_reference(pair.reference) if pair.reference else None)
                batch.append(pair)
            except VidchatError as exc:
                results.append({"id": pair.pair_id, "error": str(exc)})
                bar.update(1)
        if not batch:
            continue
        responses = pipe.respond_batch(clips, refs, max_seconds=args.max_seconds, sampling=sampling)
        for pair, response in zip(batch, responses):
            out = args.output_dir / f"{pair.pair_id}.mp4"
            write_clip(out, response.frames, response.audio, response.fps, response.sample_rate)
            results.append(
                {
                    "id": pair.pair_id,
                    "output": str(out),
                    **response.timings,
                    "duration_s": response.duration,
                }
            )
            bar.update(1)
    bar.close()
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"skipped {r['id']}: {r['error']}", file=sys.stderr)
    print(
        f"wrote {len(results) - len(failed)} responses to {args.output_dir} ({len(failed)} failed)"
    )
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()

    def run() -> None:
        import_user_modules(args.imports, "--import")  # before the checkpoint names its kinds
        if args.input is not None and not args.input.is_file():
            raise VidchatError(f"{args.input}: input clip not found")
        options.check_numbers(args)  # bad options fail before the model loads
        options.check_dtype(args.dtype)
        sampling_from_args(args)  # the sampling options: checked by SamplingConfig
        pairs = None
        if args.manifest is not None:
            pairs = read_pairs_jsonl(args.manifest)
            options.check_output_dir(
                args.output_dir, [f"{p.pair_id}.mp4" for p in pairs], args.overwrite
            )
        else:
            args.output = args.output or args.input.with_name(f"{args.input.stem}.response.mp4")
            options.check_output_file(args.output, args.input, args.overwrite)
        started = time.perf_counter()
        # one clip does not pay back the compilation; a manifest's many pairs do (auto: on a GPU)
        decode = "eager" if args.decode == "auto" and pairs is None else args.decode
        pipe = load_pipeline(args.checkpoint, device=args.device, dtype=args.dtype, decode=decode)
        options.check_capacity(
            args.max_seconds, pipe.model.cfg.max_seq_len, pipe.layout.tokens_per_second
        )
        args.context_seconds = options.check_context(
            args.context_seconds,
            args.max_seconds,
            pipe.model.cfg.max_seq_len,
            pipe.layout.tokens_per_second,
        )
        print(f"loaded model in {time.perf_counter() - started:.2f} s")
        if pairs is not None:
            respond_to_manifest(pipe, args, pairs)
        else:
            respond_to_clip(pipe, args)

    exit_on_user_error(run)
