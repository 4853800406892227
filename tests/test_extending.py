"""A user extends vidchat from their own modules, outside the package, loaded with `imports:`:
a head trained through `train.py`, a metric reported by `python -m vidchat.eval`, a video
tokenizer kind trained by the tokenizer stage with its own trainer. Each runs as a user runs it
(a subprocess), and each also fails, with one line, without the import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_TEST_OVERRIDES
from tests.training.lm_fixtures import write_synthetic_world
from vidchat.errors import ConfigError
from vidchat.utils.imports import import_user_modules

ROOT = Path(__file__).resolve().parents[1]

USER_METRIC = """
from vidchat.eval.metrics.registry import register_metric
from vidchat.eval.metrics.result import MetricResult


@register_metric("frames_per_second_seen", higher_is_better=True, summary="a user's metric")
def frames_per_second_seen(sample, scale=1.0):
    return MetricResult("frames_per_second_seen", scale * len(sample.generated_frames) / sample.fps)
"""

USER_TOKENIZER = """
import json
from pathlib import Path

from vidchat.training.tokenizers.job import export_path, register_tokenizer_trainer


@register_tokenizer_trainer("video", "user_codes")
def train(job):
    out = Path(export_path(job, "video"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"trained_on": job.data.display_name}))
    return {"user_trainer_ran": 1.0}
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=280
    )


def _error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_import_names_a_module_or_a_file_and_a_bad_one_is_one_error(tmp_path, monkeypatch):
    (tmp_path / "lab_metrics_zz.py").write_text("LOADED = True\n")
    monkeypatch.chdir(tmp_path)
    by_name, by_path = import_user_modules(["lab_metrics_zz", str(tmp_path / "lab_metrics_zz.py")])
    assert by_name.LOADED and by_path.LOADED
    with pytest.raises(ConfigError, match="no module 'lab_nowhere_zz'"):
        import_user_modules(["lab_nowhere_zz"])
    (tmp_path / "lab_broken_zz.py").write_text("import lab_nowhere_zz\n")
    with pytest.raises(ModuleNotFoundError, match="lab_nowhere_zz"):  # the user's own error
        import_user_modules(["lab_broken_zz"])
    (tmp_path / "json.py").write_text("SHADOW = True\n")
    with pytest.raises(ConfigError, match="names another module already imported"):
        import_user_modules([str(tmp_path / "json.py")])
    with pytest.raises(ConfigError, match="is not a file"):
        import_user_modules([str(tmp_path / "missing.py")])
    with pytest.raises(ConfigError, match=r"must be a list of modules, e\.g\. imports=\[x\]"):
        import_user_modules("x")


@pytest.mark.timeout(600)
def test_a_users_head_trains_through_train_py(tmp_path):
    heads = tmp_path / "lab" / "my_heads.py"
    heads.parent.mkdir()
    source = (ROOT / "tests" / "model" / "parallel_head.py").read_text()
    heads.write_text(source.replace('kind = "parallel"', 'kind = "lab_parallel"'))
    world = write_synthetic_world(tmp_path / "world", n_conversations=3)
    args = [
        str(ROOT / "train.py"),
        *world,
        "model.layout.video_head=lab_parallel",
        "model.layout.audio_head=depth",
        "stage=pretrain",
        "debug=default",
        "stage.max_steps=2",
        "run_name=lab",
    ]
    without = _run(args, tmp_path)
    assert without.returncode == 2 and len(_error_lines(without)) == 1, without.stderr[-2000:]
    assert "lab_parallel" in _error_lines(without)[0]

    trained = _run([*args, f"imports=[{heads}]"], tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    export = json.loads((tmp_path / "world" / "checkpoints" / "lab" / "lm.json").read_text())
    assert "lab_parallel" in json.dumps(export)


@pytest.mark.timeout(600)
def test_a_users_metric_is_reported_by_the_eval(demo_world, saved_responder, tmp_path):
    (tmp_path / "lab_metrics.py").write_text(USER_METRIC)
    data = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    args = [
        "-m",
        "vidchat.eval",
        *data,
        f"data.root={demo_world.root}",
        f"checkpoint={saved_responder}",
        f"output_dir={tmp_path / 'eval'}",
        "metrics=[frames_per_second_seen]",
        "+metric_options.frames_per_second_seen.scale=2.0",
        "systems=[ground_truth]",
        "max_pairs=1",
        "device=cpu",
        f"paths.output_dir={tmp_path / 'outputs'}",
    ]
    without = _run(args, tmp_path)
    assert without.returncode == 2 and len(_error_lines(without)) == 1, without.stderr[-2000:]
    assert "unknown metric 'frames_per_second_seen'" in _error_lines(without)[0]

    reported = _run([*args, "imports=[lab_metrics]"], tmp_path)  # a module name, found from cwd
    assert reported.returncode == 0, reported.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    seen = report["systems"]["ground_truth"]["overall"]["frames_per_second_seen"]
    # the answer lasts 1-2 s (DEMO_TEST_OVERRIDES' turns), and metric_options' scale 2 reached it
    assert seen["n"] == 1 and 2.0 <= seen["mean"] <= 4.0


@pytest.mark.timeout(300)
def test_the_tokenizer_stage_runs_the_trainer_of_the_tokenizers_kind(tmp_path):
    (tmp_path / "lab_tokenizer.py").write_text(USER_TOKENIZER)
    world = write_synthetic_world(tmp_path / "world", n_conversations=2)
    export = tmp_path / "tok" / "video"
    args = [
        str(ROOT / "train.py"),
        *world,
        "stage=video_tokenizer",
        "tokenizer.video.kind=user_codes",
        f"stage.export={export}",
    ]
    without = _run(args, tmp_path)
    assert without.returncode == 2, without.stderr[-2000:]
    assert "tokenizer.video.kind='user_codes' has no trainer registered" in without.stderr
    ran = _run([*args, f"imports=[{tmp_path / 'lab_tokenizer.py'}]"], tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert json.loads(export.with_suffix(".json").read_text()) == {"trained_on": "synthetic"}


def test_infer_and_the_web_demo_take_import_and_a_missing_module_is_one_line(tmp_path):
    for entry in (["infer.py", "--input", "clip.mp4"], ["-m", "vidchat.webapp"]):
        script = [str(ROOT / entry[0]), *entry[1:]] if entry[0].endswith(".py") else entry
        result = _run([*script, "--import", "lab_nowhere_zz"], tmp_path)
        assert result.returncode == 2 and _error_lines(result) == [
            "error: --import: no module 'lab_nowhere_zz' (give a dotted name on the Python "
            "path, or a path to a .py file)"
        ], result.stderr[-2000:]
