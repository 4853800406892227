"""Benchmark: tokenizing the demo world vs. reading its token shards back.

    python bench/tokenize_shards.py [--workers 2] [--out /tmp/vidchat-bench-tokenize] [-- overrides]

Tokenizes every clip of the demo manifest with the demo tokenizers into a fresh shard folder
(`stage=tokenize`), then reads every clip back from the shards, and decodes the same clips from
mp4 for comparison. Trailing `train.py` overrides change the data (for example a smaller world
under another `paths.root_dir`). Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers decoding clips")
    parser.add_argument(
        "--out", type=Path, default=None, help="scratch folder (default: a temp dir)"
    )
    parser.add_argument("--read-repeats", type=int, default=5, help="passes over the shards")
    parser.add_argument("overrides", nargs="*", help="train.py overrides naming the data")
    return parser.parse_args()


def _shard_read_rate(cfg, repeats: int) -> tuple[float, dict]:
    """Clips per second read back from the shards (opening the indexes included), and the meta."""
    from vidchat.data.shards import ShardReader
    from vidchat.training.tokenize.stage import shard_dir_for

    reader = ShardReader(shard_dir_for(cfg))
    ids = reader.ids()
    start = time.perf_counter()
    for _ in range(repeats):
        reader = ShardReader(shard_dir_for(cfg))
        for clip_id in ids:
            clip = reader[clip_id]
            assert clip.video.size and clip.audio.size
    return repeats * len(ids) / (time.perf_counter() - start), reader.meta


def _mp4_decode_rate(records, meta: dict) -> float:
    """Clips per second decoded from mp4 at the tokenizers' rates (up to 40 clips), as
    tokenize decodes them (`read_record`: the audio from the .wav beside a video-only clip)."""
    from vidchat.data.records import read_record

    video_spec, audio_spec = meta["video_spec"], meta["audio_spec"]
    sample = records[: min(len(records), 40)]
    start = time.perf_counter()
    for rec in sample:
        read_record(
            rec,
            fps=video_spec["frame_rate"],
            size=tuple(video_spec["frame_size"]),
            sample_rate=audio_spec["sample_rate"],
        )
    return len(sample) / (time.perf_counter() - start)


def main() -> None:
    args = _args()
    from vidchat.cli import compose
    from vidchat.data.manifest import load_manifest
    from vidchat.training.tokenize.stage import tokenize

    out = args.out or Path(tempfile.mkdtemp(prefix="vidchat-bench-tokenize-"))
    tokens = out / "tokens"
    shutil.rmtree(tokens, ignore_errors=True)
    cfg = compose(
        "train",
        [
            "stage=tokenize",
            f"paths.root_dir={ROOT}",
            f"++data.tokens_dir={tokens}",
            f"stage.num_workers={args.workers}",
            *args.overrides,
        ],
    )
    records = load_manifest(cfg.data).records  # generates the demo world once if needed

    start = time.perf_counter()
    n = tokenize(cfg)["clips_tokenized"]
    tokenize_s = time.perf_counter() - start
    read_rate, meta = _shard_read_rate(cfg, args.read_repeats)
    decode_rate = _mp4_decode_rate(records, meta)

    print(f"clips: {n}")
    print(f"tokenize clips/s: {n / tokenize_s:.2f}")
    print(f"mp4 decode clips/s: {decode_rate:.1f}")
    print(f"shard read clips/s: {read_rate:.0f}")
    print(f"shard read speedup: {read_rate / decode_rate:.0f}")
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
