"""`bench/gpu_check.py` returns within its budget whatever its steps do: a step that runs over
is killed, a step that cannot start in time is listed as skipped, a step whose module is
missing is skipped, and each step's figures are read from its log."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check  # its dataclasses look their module up
_spec.loader.exec_module(gpu_check)
Step = gpu_check.Step


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_steps_finish_within_the_budget_with_their_figures_and_statuses(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "RESERVE_S", 1.0)
    steps = [
        Step(
            "fast",
            py("print('first chunk latency s: 0.125'); print('rtf: 9')"),
            {"first chunk s": r"first chunk latency s: ([0-9.]+)"},
        ),
        Step("broken", py("import sys; sys.exit(3)")),
        Step("missing", py("pass"), needs="no_such_module_anywhere"),
        Step("hangs", py("import time; time.sleep(600)")),
        Step("late", py("pass")),
    ]
    start = time.monotonic()
    results = gpu_check.run_steps(steps, tmp_path, budget=9.0, cwd=tmp_path)
    assert time.monotonic() - start < 12  # the budget, plus killing the hung step
    status = {r.name: r.status for r in results}
    assert status["fast"] == "ok" and results[0].figures == {"first chunk s": "0.125"}
    assert status["broken"] == "failed (exit 3)"
    assert status["missing"] == "skipped (no module no_such_module_anywhere)"
    assert status["hangs"].startswith("timeout") and status["late"] == "skipped (budget)"
    assert "first chunk latency s: 0.125" in (tmp_path / "logs" / "fast.log").read_text()


def test_a_step_reads_its_arguments_when_it_starts(tmp_path):
    made = tmp_path / "made-by-an-earlier-step.txt"
    steps = [
        Step("make", py(f"open({str(made)!r}, 'w').write('x')")),
        Step(
            "use",
            [
                sys.executable,
                "-c",
                "import sys; print('arg:', sys.argv[1])",
                lambda: made.name if made.exists() else "missing",
            ],
            {"arg": r"arg: (\S+)"},
        ),
    ]
    results = gpu_check.run_steps(steps, tmp_path, budget=60.0, cwd=tmp_path)
    assert results[1].figures == {"arg": made.name}


def test_the_summary_is_a_table_and_the_logs_pack_into_one_file(tmp_path):
    results = gpu_check.run_steps(
        [
            Step(
                "fast",
                py("print('val loss 1.5 vs unigram')"),
                {"val loss": r"val loss ([0-9.]+) vs"},
            )
        ],
        tmp_path,
        budget=60.0,
        cwd=tmp_path,
    )
    gpu_check.write_summary(results, tmp_path, "cuda")
    gpu_check.pack_logs(tmp_path)
    assert "| fast | ok |" in (tmp_path / "summary.md").read_text()
    assert "val loss 1.5" in (tmp_path / "summary.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "logs.tar.gz",
        "summary.json",
        "summary.md",
    ]


def test_every_default_step_is_in_the_priority_order(tmp_path):
    steps = gpu_check.default_steps(tmp_path, "cuda", 40, None)
    assert [s.name for s in steps] == list(gpu_check.ORDER)
