"""`stage=tokenize stage.ray_workers=2`: the same shards' contents as one local run, split over
two Ray workers' shard files, and a rerun that finds everything done."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DEMO_TEST_OVERRIDES
from vidchat.cli import compose
from vidchat.data.shards import ShardReader
from vidchat.training.tokenize.stage import shard_dir_for, tokenize

pytest.importorskip("ray")

pytestmark = pytest.mark.serial  # its own Ray cluster: runs alone (tests/conftest.py)


def _cfg(demo_world, root, *extra):
    data = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    return compose(
        "train",
        [
            f"paths.root_dir={root}",
            f"data.root={demo_world.root}",
            *data,
            "stage=tokenize",
            "stage.num_workers=0",
            *extra,
        ],
    )


def _contents(folder) -> dict:
    reader = ShardReader(folder)
    return {c: (reader[c].video, reader[c].audio) for c in reader.ids()}


@pytest.mark.slow
def test_tokenize_on_two_ray_workers_equals_one_local_run(demo_world, tmp_path):
    local = _cfg(demo_world, tmp_path / "local")
    on_ray = _cfg(demo_world, tmp_path / "ray", "stage.ray_workers=2")
    assert tokenize(local)["clips_tokenized"] == len(demo_world.manifest.records)
    summary = tokenize(on_ray)
    assert summary["clips_tokenized"] == len(demo_world.manifest.records)
    folder = shard_dir_for(on_ray)
    workers = {p.name.split("-")[1] for p in folder.glob("shard-*.npy")}
    assert workers == {"000", "001"}  # each worker wrote its own shards
    want, got = _contents(shard_dir_for(local)), _contents(folder)
    assert sorted(got) == sorted(want)
    for clip, (video, audio) in want.items():
        assert np.array_equal(got[clip][0], video) and np.array_equal(got[clip][1], audio)
    assert tokenize(on_ray)["clips_tokenized"] == 0  # resumable: nothing left to do


def test_ray_workers_and_manual_shards_do_not_mix(demo_world, tmp_path):
    from vidchat.errors import ConfigError

    with pytest.raises(ConfigError, match="stage.num_shards must be 1 with stage.ray_workers"):
        tokenize(_cfg(demo_world, tmp_path, "stage.ray_workers=2", "stage.num_shards=2"))


def test_a_workers_error_reaches_the_user_as_its_own_line(demo_world, tmp_path):
    from vidchat.errors import VidchatError

    cfg = _cfg(
        demo_world,
        tmp_path,
        "stage.ray_workers=2",
        "data.subset=sft",
        "data.thresholds={face_blur: 10}",
    )
    with pytest.raises(VidchatError, match="selects no clips"):
        tokenize(cfg)


def test_workers_share_the_clusters_gpus_and_the_device_is_checked():
    import torch

    from vidchat.errors import ConfigError, VidchatError
    from vidchat.training.config import TokenizeStageConfig
    from vidchat.training.tokenize.ray_workers import worker_gpus
    from vidchat.training.tokenize.stage import tokenize_device

    assert worker_gpus("auto", 0.0, 2) == 0.0  # no GPU in the cluster: CPU workers
    assert worker_gpus("cpu", 8.0, 2) == 0.0  # told to stay on the CPU
    assert worker_gpus("auto", 1.0, 4) == 0.25 and worker_gpus("cuda", 8.0, 2) == 1.0
    with pytest.raises(ConfigError, match="stage.device must be auto, cpu or cuda"):
        TokenizeStageConfig(device="tpu")
    assert tokenize_device("cpu") == "cpu"
    assert tokenize_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(VidchatError, match="CUDA is not available"):
            tokenize_device("cuda:1")
