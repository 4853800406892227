"""Benchmark: curation throughput with 1 and 2 local Ray workers, and where the time goes.

    python bench/curate.py [--sources 8] [--workers 1 2]

Generates raw demo sources once (`data_cache/bench_curate/raw`, about 28 s of 320x160 video
each), then runs `python -m vidchat.curate` on them from scratch once per worker count, in a
fresh process each (its own local Ray), one after the other. Reports source-minutes processed
per wall-clock minute (with and without the start-up: Ray, then the
actors' imports until the first stage begins), the speed-up of 2 workers over 1, and
each stage's share of the worker time (from the stage results' own timings), and the last
run's known-answer scores against the sources' ground truth. Ends with
`name: value` lines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vidchat.data.demo_world.raw import RawSourceConfig, generate_raw_sources  # noqa: E402

STAGES = ("shots", "speech", "people")


def run_once(raw: Path, out: Path, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "vidchat.curate",
        f"input={raw}",
        f"output={out}",
        f"workers={workers}",
        "progress=false",
        f"paths.root_dir={out.parent}",
    ]
    start, start_epoch = time.perf_counter(), time.time()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"curate failed:\n{done.stderr[-3000:]}")
    timings = json.loads((out / ".curate" / "timings.json").read_text())
    stage_seconds = {s: 0.0 for s in (*STAGES, "cut")}
    first_start = float("inf")
    for stage in STAGES:
        for path in (out / ".curate" / stage).glob("*.json"):
            result = json.loads(path.read_text())
            stage_seconds[stage] += result["seconds"]
            first_start = min(first_start, result["started"])
    stage_seconds["cut"] = sum(timings["cut"].values())
    # start-up: Ray, then the actors (imports, first model loads) until the first stage begins
    startup = first_start - start_epoch
    return {"wall": wall, "startup": startup, "stages": stage_seconds}


def known_answers(out: Path, raw: Path) -> dict:
    """The run scored against the sources' ground truth (means over sources)."""
    from vidchat.curate.clips import ClipOptions
    from vidchat.curate.quality import QualityOptions
    from vidchat.curate.release import plan_release
    from vidchat.curate.scoring import (
        binding_accuracy,
        clip_match,
        cut_accuracy,
        diarisation_error_rate,
        truth_clips,
    )
    from vidchat.curate.shots import ShotOptions
    from vidchat.curate.store import StageStore

    truths = {p.stem: json.loads(p.read_text()) for p in sorted((raw / "truth").glob("*.json"))}
    store = StageStore(out)
    plan = plan_release(store, list(truths), ClipOptions(), QualityOptions())
    rows = []
    for ytid, truth in truths.items():
        rows.append(
            {
                "cuts within 2 frames": cut_accuracy(
                    truth["cuts"], store.load("shots", ytid)["cuts"]
                ),
                "DER": diarisation_error_rate(truth["speech"], store.load("speech", ytid)["turns"]),
                "DER (0.25 s collar)": diarisation_error_rate(
                    truth["speech"], store.load("speech", ytid)["turns"], collar=0.25
                ),
                "voice-face binding": binding_accuracy(plan.clips.get(ytid, []), truth),
                "clips as the truth defines them": clip_match(
                    plan.clips.get(ytid, []), truth_clips(truth, ShotOptions(), ClipOptions())
                ),
            }
        )
    return {k: round(sum(r[k] for r in rows) / len(rows), 3) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    base = ROOT / "data_cache" / "bench_curate"
    truths = generate_raw_sources(base / "raw", RawSourceConfig(num_sources=args.sources))
    minutes = sum(t["num_frames"] / t["fps"] for t in truths) / 60
    results = {w: run_once(base / "raw", base / f"out{w}", w) for w in args.workers}
    lines = {"source_minutes": round(minutes, 2)}
    for w, r in results.items():
        without_start = r["wall"] - r["startup"]
        lines[f"startup_s workers={w}"] = round(r["startup"], 1)
        lines[f"wall_s workers={w}"] = round(r["wall"], 1)
        lines[f"source_minutes_per_minute workers={w}"] = round(minutes / (r["wall"] / 60), 2)
        lines[f"source_minutes_per_minute_after_start workers={w}"] = round(
            minutes / (without_start / 60), 2
        )
        total = sum(r["stages"].values())
        for stage, seconds in r["stages"].items():
            lines[f"share {stage} workers={w}"] = f"{seconds / total:.0%}"
    if 1 in results and 2 in results:
        lines["speedup 2 vs 1 workers"] = round(results[1]["wall"] / results[2]["wall"], 2)
        after = [results[w]["wall"] - results[w]["startup"] for w in (1, 2)]
        lines["speedup 2 vs 1 workers after start"] = round(after[0] / after[1], 2)
    for name, value in known_answers(base / f"out{args.workers[-1]}", base / "raw").items():
        lines[name] = value
    for name, value in lines.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
