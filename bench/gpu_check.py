"""One prepared check of everything that only a GPU shows, in one call, within a time budget.

    python bench/gpu_check.py --out DIR [--budget 540] [--steps 40] [--real clip.mp4] [--pack]
    python bench/gpu_check.py --out DIR --only infer_demo,generate    # a subset, by name
    python bench/gpu_check.py --out DIR --device cpu --budget 900     # the same runs on a CPU

Each step is one of the README's own commands, run as a user runs it (a subprocess, in a
scratch folder under DIR, `TQDM_DISABLE=1`):

| step | what it runs |
|---|---|
| quickstart | `train.py stage=pretrain trainer=gpu`: demo world, tokenize on the GPU, pretrain |
| tokenize_device | `stage=tokenize stage.device=cuda` into a fresh shard folder (clips/s) |
| tokenize_ray | the same on Ray workers with a GPU share each (skipped without Ray) |
| demo64_summary_bf16 | `experiment=demo64` pretraining with the partner summary, bf16-mixed |
| deepspeed_zero2_bf16 / deepspeed_zero3_bf16 | `trainer=deepspeed_zero2|3`, bf16, one GPU |
| infer_demo / infer_real | `infer.py --dtype bfloat16` on a demo clip / on `--real` |
| generate | `bench/generate.py --model base`: the decoding table (RTF per head and size, eager and fast; the demo model's first chunk; a motion code at 64 and 256 px) |
| generate_32 | the same at 32x32 codes per frame, frame and depth heads |
| train_step | `bench/train_step.py` at the `base` shape: MFU, ours and Hugging Face's |
| live | `bench/live.py`: the live loop with the shipped responder, 60 s in real time (needs onnxruntime for Silero: `bash ../shared/gpu/wheels.sh onnxruntime`) |
| reenact | `bench/reenact.py --train-steps 1500`: a motion tokenizer trained, then measured on held-out faces |

The budget is total wall time: a step gets what is left (less a reserve for the summary), is
killed when it runs over, and a step that cannot start in time is listed as skipped. Every
step's log goes to `DIR/logs/<step>.log` (with `--pack`, one `DIR/logs.tar.gz`: a device
call returns at most 8 files), the results to `DIR/summary.json` and `DIR/summary.md` (the
README's "On a GPU" table). Ends with `name: value` lines: `<step> status`, `<step> s` and
each step's figures (`infer_demo first chunk s`, `generate rtf maskgit 16x16 cuda`, ...).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESERVE_S = 10.0  # kept back from the budget for the summary
ORDER = (
    "quickstart",
    "demo64_summary_bf16",
    "deepspeed_zero2_bf16",
    "deepspeed_zero3_bf16",
    "tokenize_device",
    "infer_demo",
    "infer_real",
    "generate",
    "tokenize_ray",
    "train_step",
    "generate_32",
    "live",
    "reenact",
)
"""Correctness first (what crashed or hung on the first GPU), then speed: a short budget cuts
the tail."""


@dataclass
class Step:
    """One command; `figures` maps a figure's name to a regex whose group 1 is its value."""

    name: str
    argv: list[str | Callable[[], str]]  # a callable is resolved when the step starts
    figures: dict[str, str] = field(default_factory=dict)
    needs: str | None = None  # a module the step needs; without it the step is skipped
    max_s: float = 600.0


@dataclass
class Result:
    name: str
    status: str  # ok, failed (exit N), timeout, skipped (why)
    seconds: float
    figures: dict[str, str]
    command: str


def _figures(step: Step, text: str) -> dict[str, str]:
    found = {}
    for name, pattern in step.figures.items():
        hits = re.findall(pattern, text, flags=re.MULTILINE)
        if hits:
            found[name] = hits[-1] if isinstance(hits[-1], str) else hits[-1][0]
    return found


def _argv(step: Step) -> list[str]:
    return [a() if callable(a) else a for a in step.argv]


def run_step(step: Step, logs: Path, cwd: Path, limit: float) -> Result:
    """Run `step` for at most `limit` seconds (its whole process group is killed after)."""
    argv = _argv(step)
    command = " ".join(argv)
    if step.needs and importlib.util.find_spec(step.needs) is None:
        return Result(step.name, f"skipped (no module {step.needs})", 0.0, {}, command)
    log = logs / f"{step.name}.log"
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    with log.open("w") as out:
        out.write(f"$ {command}\n")
        out.flush()
        proc = subprocess.Popen(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            code = proc.wait(timeout=max(limit, 1.0))
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = f"timeout ({limit:.0f} s)"
    seconds = time.monotonic() - start
    return Result(
        step.name, status, seconds, _figures(step, log.read_text(errors="replace")), command
    )


def run_steps(steps: list[Step], out: Path, budget: float, cwd: Path) -> list[Result]:
    """Run `steps` in order within `budget` seconds in all."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + budget - RESERVE_S
    results = []
    for step in steps:
        left = deadline - time.monotonic()
        if left < 5:
            results.append(Result(step.name, "skipped (budget)", 0.0, {}, " ".join(_argv(step))))
            continue
        print(f"gpu_check: {step.name} (up to {min(step.max_s, left):.0f} s)", flush=True)
        results.append(run_step(step, logs, cwd, min(step.max_s, left)))
    return results


def demo_clip(work: Path) -> str:
    """A partner clip of the quickstart's demo world (the quickstart step makes it)."""
    clips = sorted((work / "data_cache" / "demo" / "videos").glob("*/*_A.mp4"))
    return str(clips[-1]) if clips else str(work / "no-demo-world-yet.mp4")


def _training_steps(work: Path, device: str, steps: int) -> list[Step]:
    """The quickstart, tokenization and the LM stages (bf16, DeepSpeed ZeRO-2/3)."""
    py, train = sys.executable, str(ROOT / "train.py")
    gpu = device != "cpu"
    trainer = "trainer=gpu" if gpu else "trainer=cpu"
    short = [
        f"stage.max_steps={steps}",
        "trainer.val_check_interval=20",
        "trainer.limit_val_batches=2",
    ]
    demo64 = [py, train, "experiment=demo64", "stage=pretrain", *short]
    loss = {"val loss": r"val loss ([0-9.]+) vs unigram"}
    clips = {"clips per s": r"'clips_per_s': ([0-9.]+)"}
    tokenize = [py, train, "stage=tokenize", f"stage.device={'cuda' if gpu else 'cpu'}"]
    bf16 = "trainer.precision=bf16-mixed"
    return [
        Step("quickstart", [py, train, "stage=pretrain", trainer], loss, max_s=900),
        Step("tokenize_device", [*tokenize, f"data.tokens_dir={work}/tokens_device"], clips),
        Step(
            "tokenize_ray",
            [*tokenize, "stage.ray_workers=2", f"data.tokens_dir={work}/tokens_ray"],
            clips,
            needs="ray",
        ),
        Step(
            "demo64_summary_bf16",
            [*demo64, trainer, bf16, "model.partner_summary=true", "run_name=gc-summary"],
            loss,
        ),
        *(
            Step(
                f"deepspeed_{zero}_bf16",
                [
                    *demo64,
                    f"trainer=deepspeed_{zero}",
                    "trainer.devices=1",
                    bf16,
                    f"run_name=gc-{zero}",
                ],
                loss,
                needs="deepspeed",
            )
            for zero in ("zero2", "zero3")
        ),
    ]


def _inference_steps(work: Path, device: str, real: str | None) -> list[Step]:
    """`infer.py` on a demo clip and on a real one."""
    dtype = "bfloat16" if device != "cpu" else "float32"
    infer = [
        sys.executable,
        str(ROOT / "infer.py"),
        "--dtype",
        dtype,
        "--overwrite",
        "--device",
        device,
    ]
    answer = {
        "first chunk s": r"first chunk latency s: ([0-9.]+)",
        "rtf": r"real-time factor: ([0-9.]+)",
    }
    real_clip = real or str(work / "no-real-clip-given.mp4")
    return [
        Step(
            "infer_demo",
            [*infer, "--input", lambda: demo_clip(work), "--output", str(work / "answer_demo.mp4")],
            answer,
        ),
        Step(
            "infer_real",
            [*infer, "--input", real_clip, "--output", str(work / "answer_real.mp4")],
            answer,
        ),
    ]


TRAIN_STEP_FIGURES = {
    "step ms ours": r"^train step ours ms: ([0-9.]+)",
    "mfu ours": r"^mfu ours: ([0-9.]+)",
    "mfu hf": r"^mfu hf: ([0-9.]+)",
    "step ms hf": r"^train step hf ms: ([0-9.]+)",
    "step ms ours chunked": r"^train step ours chunked ms: ([0-9.]+)",
    "step ms ours packed": r"^train step ours packed ms: ([0-9.]+)",
    "step ms ours liger": r"^train step ours liger ms: ([0-9.]+)",
    "peak GiB liger": r"^peak memory GiB ours liger \w+: ([0-9.]+)",
    "peak GiB plain": r"^peak memory GiB ours plain \w+: ([0-9.]+)",
    "peak GiB chunked": r"^peak memory GiB ours chunked \w+: ([0-9.]+)",
}
LIVE_FIGURES = {
    name: rf"^live {name}: ([0-9.]+)"
    for name in (
        "first answer frame ms",
        "barge-in to listening ms",
        "output frame interval p95 ms",
        "dropped frames",
        "listening chunk ms",
    )
}
REENACT_FIGURES = {
    name: rf"^{name}: ([0-9.]+)"
    for name in (
        "reenact psnr db",
        "reenact emotion agreement",
        "reenact identity",
        "identity probe from motion codes",
        "identity probe from the motion alone",
        "emotion probe from motion codes",
        "round trip psnr db",
        "round trip psnr db on crisp renders",
        "video codec psnr db",
    )
}
BASE_SHAPE = ["--dim", "1024", "--layers", "24", "--heads", "16", "--seq", "4096", "--batch", "8"]


def _bench_steps(work: Path, device: str) -> list[Step]:
    """The decoding table (`bench/generate.py`), the training step (`bench/train_step.py`), the
    live loop (`bench/live.py`) and motion reenactment (`bench/reenact.py`)."""
    py, gpu = sys.executable, device != "cpu"
    table = {
        f"rtf {h} {s} {r}": rf"^rtf {h} {s} \w+ {r}: ([0-9.]+)"
        for h in ("maskgit", "depth", "flat")
        for s in ("4x4", "8x8", "16x16", "32x32")
        for r in ("eager", "fast")
    }
    table.update(
        {f"first chunk s {r}": rf"^first chunk s \w+ {r}: ([0-9.]+)" for r in ("eager", "fast")}
    )
    table.update({f"rtf motion {s}px": rf"^rtf motion {s}px \w+: ([0-9.]+)" for s in (64, 256)})
    bench = [py, str(ROOT / "bench" / "generate.py"), "--device", device]
    bench += ["--model", "base" if gpu else "tiny", "--dtype", "bfloat16" if gpu else "float32"]
    bench += ["--repeats", "2"]
    grids_32 = ["--grids", "32" if gpu else "8", "--heads", "maskgit,depth", "--no-first-chunk"]
    grids_32 += ["--no-motion"]
    shape = [*BASE_SHAPE, "--vocab", "73735"] if gpu else []
    train_step = [py, str(ROOT / "bench" / "train_step.py"), "--device", device, *shape]
    reenact = [py, str(ROOT / "bench" / "reenact.py"), "--work", str(work / "reenact")]
    reenact += ["--train-steps", "1500"] if gpu else ["--train-steps", "2", "--conversations", "4"]
    # the shipped recipe's world (256 faces) is generated first: 8 processes on the GPU machine
    reenact_overrides = ["trainer=gpu", "data.workers=8"] if gpu else ["trainer=cpu"]
    return [
        Step("generate", [*bench, "--grids", "8,16" if gpu else "4,8"], table),
        Step("generate_32", [*bench, *grids_32], table),
        Step("train_step", train_step, TRAIN_STEP_FIGURES),
        Step(
            "live",
            [py, str(ROOT / "bench" / "live.py"), "--device", device],
            LIVE_FIGURES,
            needs="onnxruntime",
        ),
        Step("reenact", [*reenact, "--", *reenact_overrides], REENACT_FIGURES),
    ]


def default_steps(work: Path, device: str, steps: int, real: str | None) -> list[Step]:
    every = [
        *_training_steps(work, device, steps),
        *_inference_steps(work, device, real),
        *_bench_steps(work, device),
    ]
    return sorted(every, key=lambda step: ORDER.index(step.name))


def write_summary(results: list[Result], out: Path, device: str) -> None:
    (out / "summary.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    rows = ["| step | status | s | figures |", "|---|---|---|---|"]
    for r in results:
        figures = ", ".join(f"{k} {v}" for k, v in r.figures.items()) or "-"
        rows.append(f"| {r.name} | {r.status} | {r.seconds:.0f} | {figures} |")
    (out / "summary.md").write_text(f"gpu_check on {device}\n\n" + "\n".join(rows) + "\n")


def pack_logs(out: Path) -> None:
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        tar.add(out / "logs", arcname="logs")
    shutil.rmtree(out / "logs")


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for logs and the summary")
    p.add_argument("--budget", type=float, default=540.0, help="total seconds, summary included")
    p.add_argument("--steps", type=int, default=40, help="optimizer steps of each training run")
    p.add_argument("--real", default=None, help="a real recording for infer_real (mp4 with audio)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--only", default=None, help="comma-separated step names")
    p.add_argument("--pack", action="store_true", help="logs as one logs.tar.gz")
    args = p.parse_args()
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    steps = default_steps(work, args.device, args.steps, args.real)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {s.name for s in steps})
        if unknown:
            sys.exit(
                f"error: --only names unknown steps {unknown}; known: {[s.name for s in steps]}"
            )
        steps = [s for s in steps if s.name in wanted]
    results = run_steps(steps, args.out, args.budget, work)
    write_summary(results, args.out, args.device)
    shutil.rmtree(work, ignore_errors=True)  # checkpoints and data: not results
    if args.pack:
        pack_logs(args.out)
    for r in results:
        print(f"{r.name} status: {r.status}")
        print(f"{r.name} s: {r.seconds:.1f}")
        for name, value in r.figures.items():
            print(f"{r.name} {name}: {value}")


if __name__ == "__main__":
    main()
