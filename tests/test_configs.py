"""Every config in every group composes and resolves; bad keys / group values fail clearly."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs"
GROUPS = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir())
# files starting with `_` are shared bases included by the options, not options themselves
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONFIG_DIR / g).glob("[!_]*.yaml"))]


def _compose(overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=False)


def test_every_group_has_options():
    assert {
        "stage",
        "trainer",
        "logger",
        "model",
        "data",
        "tokenizer",
        "debug",
        "experiment",
    } <= set(GROUPS)
    assert len(OPTIONS) > 20


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_composes_and_resolves(group, option):
    # data.root is `???` in the real-data configs: the user's to fill
    cfg = _compose([f"{group}={option}", "data.root=/user/data"])
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert plain["stage"]["name"] and ":" in plain["stage"]["entry"]
    # the option's own values are what the run gets (a wrong package or a later default would
    # silently replace them)
    path = CONFIG_DIR / group / f"{option}.yaml"
    own = OmegaConf.load(path)
    target = cfg if path.read_text().startswith("# @package _global_") else cfg[group]
    for key, value in _leaves(OmegaConf.to_container(own, resolve=False)):
        if key[0] == "defaults" or (isinstance(value, str) and ("${" in value or value == "???")):
            continue
        got = OmegaConf.select(target, ".".join(key), throw_on_missing=False)
        got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
        assert got == value, (key, got, value)


def _leaves(tree, prefix=()):
    """(key path, value) of every non-dict leaf of a nested dict."""
    if not isinstance(tree, dict) or not tree:
        yield prefix, tree
        return
    for k, v in tree.items():
        yield from _leaves(v, (*prefix, str(k)))


@pytest.mark.parametrize("trainer", [o for g, o in OPTIONS if g == "trainer"])
@pytest.mark.parametrize("logger", [o for g, o in OPTIONS if g == "logger"])
def test_every_trainer_and_logger_config_builds_a_trainer(trainer, logger, tmp_path, monkeypatch):
    """On this CPU-only machine: gpu-only settings resolve to CPU equivalents or a clear error."""
    import torch

    from vidchat.errors import ConfigError
    from vidchat.training.config import RunConfig
    from vidchat.training.trainer import build_trainer

    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = RunConfig.from_cfg(
        _compose([f"trainer={trainer}", f"logger={logger}", f"paths.root_dir={tmp_path}"]), "test"
    )
    if trainer == "gpu" and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="trainer.accelerator=gpu but no CUDA GPU"):
            build_trainer(cfg, max_steps=1, default_root_dir=tmp_path)
        return
    t = build_trainer(cfg, max_steps=1, default_root_dir=tmp_path)
    assert t.max_steps == 1
    if logger == "wandb":
        assert t.logger._wandb_init["mode"] == "offline"  # never needs an account
    if logger == "none":
        assert t.logger is None


def _train_py(*args):
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_unknown_key_and_wrong_group_value_fail_with_one_clear_line():
    bad_key = _train_py("stage=pretrain", "trainer.acumulate_grad_batches=2")
    assert bad_key.returncode == 2
    assert bad_key.stderr.splitlines() == [
        "error: Could not override 'trainer.acumulate_grad_batches'. "
        "To append to your config use +trainer.acumulate_grad_batches=2"
    ]
    bad_group = _train_py("stage=pretrian")
    assert bad_group.returncode == 2
    assert bad_group.stderr.splitlines() == [
        "error: In 'train': Could not find 'stage/pretrian'. Available options in 'stage': "
        "audio_codec, pretrain, sft, tokenize, video_tokenizer"
    ]


@pytest.mark.parametrize("devices", [0, -2, "two", [], [-1]])
def test_bad_trainer_devices_is_one_config_error(devices):
    from vidchat.errors import ConfigError
    from vidchat.training.config import TrainerConfig

    with pytest.raises(ConfigError, match="trainer.devices must be"):
        TrainerConfig(devices=devices)


BAD_STAGE_VALUES = [
    "stage.max_steps=abc",
    "stage.max_steps=-3",
    "stage.batch_size=0",
    "stage.optim.lr=nan",
    "stage.noise.stranger_partner=1.5",
    "stage.reference=face",
    "trainer.val_check_interval=0",
    "trainer.devices=0",
    "data.root=/proc/vidchat",
    "paths.checkpoint_dir=/proc/vidchat-ckpt",
    "paths.output_dir=/proc/vidchat-out",
]


@pytest.mark.slow
@pytest.mark.parametrize("override", BAD_STAGE_VALUES)
def test_bad_config_value_is_one_line_before_any_work(override, tmp_path):
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [
            sys.executable,
            str(root / "train.py"),
            "stage=pretrain",
            f"paths.root_dir={tmp_path}",
            override,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr[-1500:]
    assert lines[-1].startswith("error: ") and "Traceback" not in done.stderr
    assert override.split("=")[0] in lines[-1], lines[-1]  # the message names the bad key
    assert not (tmp_path / "checkpoints").exists()  # nothing trained, nothing written


def test_a_bad_weight_dtype_is_one_config_error_in_eval_and_the_web_demo():
    from vidchat.cli import compose as compose_config
    from vidchat.errors import ConfigError
    from vidchat.eval.config import EvalConfig
    from vidchat.webapp.config import DemoConfig

    with pytest.raises(ConfigError, match="dtype must be one of auto, float32, bfloat16, float16"):
        EvalConfig.from_cfg(compose_config("eval", ["dtype=fp8"]))
    with pytest.raises(ConfigError, match="--dtype must be one of auto, float32, bfloat16"):
        DemoConfig(dtype="fp8")
    assert EvalConfig.from_cfg(compose_config("eval", ["dtype=bfloat16"])).dtype == "bfloat16"
    with pytest.raises(ConfigError, match="decode must be one of"):
        EvalConfig.from_cfg(compose_config("eval", ["decode=turbo"]))
    assert EvalConfig.from_cfg(compose_config("eval", ["decode=fast"])).decode == "fast"


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_bad_decode_timeout_is_one_config_error(timeout):
    from vidchat.errors import ConfigError
    from vidchat.training.config import TokenizeStageConfig

    with pytest.raises(ConfigError, match="stage.decode_timeout must be positive"):
        TokenizeStageConfig(decode_timeout=timeout)


@pytest.mark.parametrize(
    "module",
    [
        "infer.py",
        "-m vidchat.webapp",
        "-m vidchat.data.speakervid",
        "-m vidchat.data.demo_world.raw",
        "-m vidchat.training.lm.bundle",
    ],
)
def test_a_bad_command_line_is_one_error_line(module):
    """argparse's own errors too: no usage block before the error (`--help` prints it)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, *module.split(), "--no-such-option"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "--help" in lines[0] and "usage:" not in done.stderr
