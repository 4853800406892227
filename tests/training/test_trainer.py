"""build_trainer: config resolution and one-line errors."""

import pytest
from lm_fixtures import run_cfg, trainer_cfg
from omegaconf import OmegaConf

from vidchat.errors import ConfigError
from vidchat.training.checkpoint_io import AtomicCheckpointIO, atomic_torch_save
from vidchat.training.trainer import (
    build_trainer,
    deepspeed_config,
    resolve_devices,
    resolve_precision,
)


def test_unknown_trainer_key_is_one_line_error(tmp_path):
    cfg = trainer_cfg()
    OmegaConf.set_struct(cfg, False)
    cfg.trainer.acumulate_grad_batches = 2
    with pytest.raises(
        ConfigError, match=r"^trainer config has unknown key\(s\) \['acumulate_grad_batches'\]"
    ):
        build_trainer(run_cfg(cfg), max_steps=1, default_root_dir=tmp_path)


def test_auto_settings_resolve_for_cpu():
    assert resolve_precision({"precision": "auto"}, "cpu") == "32-true"
    assert resolve_devices({"devices": "auto", "strategy": "ddp"}, "cpu") == 2
    assert resolve_devices({"devices": "auto", "strategy": "auto"}, "cpu") == 1


def test_deepspeed_config_and_bad_values():
    cfg = deepspeed_config(
        {
            "stage": 3,
            "offload_optimizer": True,
            "offload_parameters": True,
            "extra": {"zero_optimization": {"reduce_bucket_size": 5}},
        }
    )
    zero = cfg["zero_optimization"]
    assert (
        zero["stage"] == 3
        and zero["offload_param"]["device"] == "cpu"
        and zero["reduce_bucket_size"] == 5
    )
    with pytest.raises(ConfigError, match="offload_parameters needs trainer.deepspeed.stage=3"):
        deepspeed_config({"stage": 2, "offload_parameters": True})


def test_val_interval_counts_optimizer_steps_and_checkpoints_are_atomic(tmp_path):
    t = build_trainer(
        run_cfg(trainer_cfg(val_check_interval=5, accumulate_grad_batches=4)),
        max_steps=10,
        default_root_dir=tmp_path,
    )
    assert t.val_check_interval == 20  # Lightning counts micro-batches
    assert isinstance(t.strategy.checkpoint_io, AtomicCheckpointIO)
    atomic_torch_save({"a": 1}, tmp_path / "x.ckpt")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("x.ckpt")] == ["x.ckpt"]
