"""Benchmark: infer.py on long partner clips. Peak memory and time for 1-, 5- and 20-minute
inputs, with the shipped demo LM; the answer reads only the last `--context-seconds`.

    python bench/long_input.py [--minutes 1 5 20] [--threads 1]

Writes each partner clip once (128x128 px, 25 fps, 16 kHz speech-like noise) into
`data_cache/bench_long_input/`, then runs `infer.py` on it in a fresh process per length and
reads that process's peak RSS. The issue's target: peak memory grows by at most 10% from 1 to
20 minutes. Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vidchat.media.stream_writer import ClipStreamWriter  # noqa: E402

RUN = """import json, resource, sys, time
from vidchat.inference.cli import main
t = time.perf_counter(); main(sys.argv[1:])
print(json.dumps({"seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"""


def partner_clip(path: Path, minutes: float) -> Path:
    """A long clip written minute by minute (the writer streams; memory stays small)."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    fps, sr, size = 25, 16000, 128
    with ClipStreamWriter(path, fps, sr, (size, size)) as out:
        for m in range(int(round(minutes * 60))):
            frames = np.full((fps, size, size, 3), (m * 7) % 255, np.uint8)
            frames[:, 40:90, 40:90] = rng.integers(0, 255, 3, dtype=np.uint8)
            out.write(frames, (0.1 * rng.standard_normal(sr)).astype(np.float32))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 20])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cache = ROOT / "data_cache" / "bench_long_input"
    cache.mkdir(parents=True, exist_ok=True)
    results = {}
    for minutes in args.minutes:
        clip = partner_clip(cache / f"partner_{minutes:g}min.mp4", minutes)
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [
                sys.executable,
                "-c",
                RUN,
                "--input",
                str(clip),
                "--output",
                str(Path(tmp) / "answer.mp4"),
                "--max-seconds",
                "2",
            ]
            env = {"OMP_NUM_THREADS": str(args.threads), "PATH": "/usr/bin:/bin"}
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"infer failed on {clip}: {done.stderr.strip().splitlines()[-1]}")
        stats = json.loads(done.stdout.strip().splitlines()[-1])
        results[minutes] = (stats["peak_rss_mb"], wall)
        print(f"{minutes:g} min input: peak {stats['peak_rss_mb']:.0f} MB, {wall:.1f} s wall")
    for minutes, (rss, wall) in results.items():
        print(f"peak rss mb {minutes:g} min: {rss:.0f}")
        print(f"wall s {minutes:g} min: {wall:.1f}")
    lo, hi = min(results), max(results)
    print(
        f"peak rss growth {lo:g} -> {hi:g} min: {100 * (results[hi][0] / results[lo][0] - 1):.1f}%"
    )


if __name__ == "__main__":
    main()
