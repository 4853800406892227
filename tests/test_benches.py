"""Every `bench/` script runs to its `name: value` lines at tiny sizes, so that none can rot
(#30: `bench/tokenize_shards.py` had crashed since the demo world moved its audio to a wav).
The figures themselves are not checked here: benchmarks measure, tests do not time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
DEMO64 = str(ROOT / "vidchat" / "assets" / "demo64" / "lm")
SMALL_WORLD = [
    "data.num_conversations=8",
    "data.num_identities=4",
    "data.turns_per_conversation=3",
    "data.turn_seconds=[1.0,2.0]",
]
NAME_VALUE = re.compile(r"^[^:#]+: \S")

# script -> arguments at tiny sizes; scripts that read a demo64 world get it as {world}
SELF_CONTAINED = {
    "context.py": [],
    "generate.py": [
        "--model",
        "tiny",
        "--context",
        "60",
        "--repeats",
        "1",
        "--threads",
        "1",
        "--grids",
        "4",
        "--device",
        "cpu",
        "--backend",
        "aot_eager",
        "--heads",
        "flat,maskgit",
        "--no-motion",  # motion_rtf.py's own smoke run covers it
    ],
    "long_input.py": ["--minutes", "0.1", "--threads", "1"],
    "train_step.py": [
        "--dim",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--seq",
        "64",
        "--batch",
        "1",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--compile",
        "aot_eager",
    ],
    "video_tokenizer.py": [
        "--sizes",
        "64",
        "--variants",
        "s8-fsq1k",
        "--steps",
        "2",
        "--batch",
        "2",
        "--threads",
        "1",
    ],
    "web_demo.py": ["--repeats", "1", "--threads", "1"],
    "live.py": ["--seconds", "6", "--threads", "1", "--device", "cpu"],
    "motion_rtf.py": ["--repeats", "1", "--threads", "1"],
    "curate.py": ["--sources", "1", "--workers", "1"],
    "overfit_rung.py": ["--steps", "3", "--conversations", "2", "--work", "rung"],
    "reenact.py": [
        "--train-steps",
        "2",
        "--work",
        "reenact",
        "--conversations",
        "4",
        "--trained-faces",
        "4",
        "--faces",
        "2",
        "--takes",
        "2",
        "--seconds",
        "1",
    ],
}
ON_A_WORLD = {
    "copy_probe.py": [
        "--checkpoint",
        DEMO64,
        "--examples",
        "8",
        "--",
        "experiment=demo64_motion",
        "stage=sft",
        "paths.root_dir={work}",
        *SMALL_WORLD,
    ],
    "turn_probe.py": [
        "--checkpoint",
        DEMO64,
        "--examples",
        "32",
        "--",
        "experiment=demo64_motion",
        "stage=sft",
        "paths.root_dir={work}",
        *SMALL_WORLD,
    ],
    "expression_probe.py": [
        "--shards",
        "{work}/data_cache/tokens/demo-demo64_motion",
        "--checkpoint",
        DEMO64,
        "--dims",
        "16",
    ],
    "partner_dependence.py": [
        "--checkpoint",
        DEMO64,
        "--pairs",
        "4",
        "--",
        "paths.root_dir={work}",
        "data.root={work}/data_cache/demo64",
        "data.video.size=64",
        *SMALL_WORLD,
    ],
    "tokenize_shards.py": [
        "--workers",
        "0",
        "--read-repeats",
        "1",
        "--out",
        "{work}/scratch",
        "--",
        "experiment=demo64_motion",
        "paths.root_dir={work}",
        *SMALL_WORLD,
    ],
}


def run_bench(script: str, args: list[str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines and NAME_VALUE.match(lines[-1]), done.stdout[-2000:]
    return lines


def test_every_bench_script_has_a_smoke_run():
    listed = {*SELF_CONTAINED, *ON_A_WORLD, "gpu_check.py"}
    assert {p.name for p in (ROOT / "bench").glob("*.py")} == listed


@pytest.mark.parametrize("script", sorted(SELF_CONTAINED))
def test_bench_runs_at_tiny_size(script, tmp_path):
    run_bench(script, SELF_CONTAINED[script], tmp_path)


@pytest.fixture(scope="module")
def world_work(tmp_path_factory) -> Path:
    """A small demo64 world, tokenized (the probes read its shards), in a work folder."""
    work = tmp_path_factory.mktemp("bench_world")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "stage=tokenize",
            "experiment=demo64_motion",
            f"paths.root_dir={work}",
            *SMALL_WORLD,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return work


@pytest.mark.parametrize("script", sorted(ON_A_WORLD))
def test_bench_runs_on_a_small_world(script, world_work):
    args = [a.replace("{work}", str(world_work)) for a in ON_A_WORLD[script]]
    run_bench(script, args, world_work)


def test_gpu_check_runs_a_step_on_the_cpu(world_work, tmp_path):
    """The GPU check's own plumbing end to end: a step run, its figures read, the summary."""
    (clip,) = sorted((world_work / "data_cache" / "demo64" / "videos").glob("*/*_A.mp4"))[:1]
    out = tmp_path / "out"
    run_bench(
        "gpu_check.py",
        [
            "--out",
            str(out),
            "--budget",
            "200",
            "--device",
            "cpu",
            "--only",
            "infer_real",
            "--real",
            str(clip),
        ],
        tmp_path,
    )
    (step,) = json.loads((out / "summary.json").read_text())
    assert step["status"] == "ok" and float(step["figures"]["rtf"]) > 0, step
