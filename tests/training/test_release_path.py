"""The README's SpeakerVid-5M recipe, as written, on a small sample in the release layout with real
faces and real speech: cut, train the video tokenizer at the data's size, tokenize, pretrain,
SFT and evaluate on testset.json's pair.

The commands are read from README.md's fenced block under "The SpeakerVid-5M release", so the
test breaks when the README and the code part ways (issue #40: the README's step 2 met the 32 px
demo tokenizer with the release's 256 px and stopped at one error line). The only changes are
the ones the README itself names: the data paths (`/data/speakervid`, `/data/yt`) become the
sample's, and its CPU-trial overrides are appended (to each `train.py` command, and the eval's).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.release_sample import real_release
from vidchat.cli import compose

SECTION = "### The SpeakerVid-5M release\n"
DATA_PATHS = {"/data/speakervid": "release", "/data/yt": "sources"}
STEP_TIMEOUT_S = 300


def readme_recipe(
    readme: Path = REPO_ROOT / "README.md",
) -> tuple[list[list[str]], list[str], list[str]]:
    """(the block's commands as argv lists, the trial overrides for `train.py`, for the eval)."""
    text = readme.read_text()
    assert SECTION in text, f"README.md has no section {SECTION.strip()!r}"
    section = text.split(SECTION, 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the SpeakerVid-5M section has no ```bash block"
    commands = [
        shlex.split(line, comments=True)
        for line in block.group(1).splitlines()
        if line.startswith("python ")
    ]
    trial = re.search(r"Append `([^`]+)`\s+to each `train.py` command", section)
    eval_trial = re.search(r"evaluate with `([^`]+)`", section)
    assert trial and eval_trial, "the section no longer says how to try the recipe on a CPU"
    return commands, trial.group(1).split(), eval_trial.group(1).split()


def _on_sample(argv: list[str], root: Path) -> list[str]:
    """`argv` with the README's data paths replaced by the sample's under `root`."""
    out = []
    for arg in argv:
        for path, folder in DATA_PATHS.items():
            arg = arg.replace(path, str(root / folder))
        assert "/data/" not in arg, f"a data path the test does not know: {arg}"
        out.append(arg)
    return out


def _train_cfg(argv: list[str], root: Path, extra: list[str] = ()):
    """The config a `python train.py ...` line composes, its outputs under `root`."""
    return compose("train", [*argv[2:], *extra, f"paths.root_dir={root}"])


def _stage(argv: list[str]) -> str:
    """cut, eval, or the stage a `train.py` line runs (which an experiment may choose)."""
    if argv[1] == "train.py":
        return _train_cfg(argv, Path(".")).stage.name
    return {"vidchat.eval": "eval", "vidchat.data.speakervid": "cut"}[argv[2]]


@pytest.mark.timeout(120)
def test_readme_recipe_trains_a_tokenizer_at_the_datas_size_that_the_later_steps_read(tmp_path):
    """Composed, not run: the recipe trains a video tokenizer at the data's frame size before it
    tokenizes, and tokenize, pretraining and SFT read that export; the eval reads SFT's."""
    commands, trial, _ = readme_recipe()
    stages = [_stage(c) for c in commands]
    assert stages == ["cut", "video_tokenizer", "tokenize", "pretrain", "sft", "eval"]
    cfgs = dict(zip(stages[1:5], (_train_cfg(c, tmp_path) for c in commands[1:5]), strict=True))
    made = cfgs["video_tokenizer"]
    size = made.data.video.size
    assert made.tokenizer.video.model.get("frame_size", size) == size == 256
    for name in ("tokenize", "pretrain", "sft"):
        cfg = cfgs[name]
        assert cfg.data.video.size == size, name
        assert cfg.tokenizer.video.checkpoint == made.stage.export, name
        assert cfg.tokenizer.name == made.tokenizer.name, name  # the same token shards
    assert cfgs["tokenize"].data.subset == "all"  # pretraining and SFT read different subsets
    assert {cfgs["pretrain"].data.subset, cfgs["sft"].data.subset} == {"pretrain", "sft"}
    checkpoint = [a for a in commands[5] if a.startswith("checkpoint=")]
    assert checkpoint == [f"checkpoint=checkpoints/{cfgs['sft'].run_name}/lm"]
    # the trial keeps the chain: the debug runs stay at the tokenizer's size and read its export
    tried = _train_cfg(commands[3], tmp_path, trial)
    assert (
        tried.trainer.accelerator == "cpu" and tried.tokenizer.video.checkpoint == made.stage.export
    )


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The sample: 4 two-turn sources (one outside SFT_set.json: the pretrain subset), uncut."""
    return real_release(tmp_path_factory.mktemp("release_path"), pretrain_source=True)


def _run(argv: list[str], root: Path) -> None:
    """One README command, run from `root` (where its relative outputs land): exit 0."""
    argv = [sys.executable, *argv[1:]]
    if argv[1] == "train.py":
        argv[1] = str(REPO_ROOT / "train.py")
    env = {**os.environ, "TQDM_DISABLE": "1", "WANDB_MODE": "offline"}
    done = subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S
    )
    assert done.returncode == 0, f"{shlex.join(argv)}\n{(done.stdout + done.stderr)[-3000:]}"


def _check_outputs(stage: str, argv: list[str], root: Path) -> None:
    """What each step must leave behind."""
    from vidchat.data.shards import ShardReader
    from vidchat.training.tokenize.stage import shard_dir_for

    if stage == "cut":
        assert len(list((root / "release" / "videos").glob("*/*.mp4"))) == 16
        return
    if stage == "eval":
        report = json.loads((root / "outputs" / "eval" / "report.json").read_text())
        assert report["num_pairs"] == 1  # VidChatBench's pair from testset.json
        truth = report["systems"]["ground_truth"]["overall"]["psnr"]
        model = report["systems"]["model"]["overall"]["psnr"]
        assert truth["mean"] >= 60 and truth["n"] == 1 and 0 < model["mean"] < truth["mean"]
        return
    cfg = _train_cfg(argv, root)
    if stage == "video_tokenizer":
        saved = json.loads(Path(f"{cfg.stage.export}.json").read_text())
        assert saved["config"]["frame_size"] == cfg.data.video.size == 256
    elif stage == "tokenize":
        reader = ShardReader(shard_dir_for(cfg))
        assert len(reader) == 16 and reader.meta["video_spec"]["frame_size"] == [256, 256]
    else:
        metrics = json.loads((root / "checkpoints" / cfg.run_name / "metrics.json").read_text())
        assert metrics["step"] == cfg.stage.max_steps and metrics["train_examples"] > 0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_readme_speakervid_commands_run_as_written_on_a_release_sample(release):
    commands, trial, eval_trial = readme_recipe()
    for argv in commands:
        stage = _stage(argv)
        extra = trial if stage not in ("cut", "eval") else eval_trial if stage == "eval" else []
        argv = _on_sample(argv, release) + extra
        _run(argv, release)
        _check_outputs(stage, argv, release)
