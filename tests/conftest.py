"""Shared fixtures.

- `from tests.real_media import carphone_path, librivox_wavs, pyannote_sample` works from any
  test (the repo root is put on `sys.path` here).
- `demo_world` (session-scoped): a small demo world generated once into a temp dir; see its
  docstring for what it returns.
- Tiers: `slow` marks the long tests and `serial` the ones that must run alone (kill and signal
  timings, Ray clusters, the browser). The inner loop is `pytest -n 2 -m "not slow and not
  serial"`; CI runs `pytest -n 2 -m "not serial"`, then `pytest -m serial`. Tests that use the
  `ray_cluster` fixture are marked serial here.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
SERIAL_FIXTURES = {"ray_cluster"}  # a local Ray cluster per xdist worker would fight for the CPUs

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one thread each (and in the processes they start), not two each.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

from vidchat.data.sources.demo import ensure_demo_world  # noqa: E402

pytest_plugins = ["tests.tiny_responder"]
from vidchat.data.manifest import load_manifest  # noqa: E402
from vidchat.data.records import Manifest  # noqa: E402

# A small demo world for tests: 4 conversations (train 2 / val 1 / test 1) x 3 turns of 1-2 s,
# 24 clips in all (a few seconds to generate).
DEMO_TEST_OVERRIDES = {
    "num_conversations": 4,
    "turns_per_conversation": 3,
    "turn_seconds": [1.0, 2.0],
}


@dataclass
class DemoWorld:
    """What the `demo_world` fixture returns."""

    root: Path  # folder holding videos/, merged_anno/, refs/, test_pairs.jsonl, ...
    manifest_path: Path  # root/all_data_list.json (what ensure_demo_world returns)
    cfg: DictConfig  # the data config (configs/data/demo.yaml + the small overrides, root set)
    manifest: Manifest  # load_manifest(cfg): records, pairs, splits


def make_demo_cfg(root: Path, **overrides) -> DictConfig:
    """configs/data/demo.yaml (over its `_base`) with `root` and the test-size overrides applied
    (no Hydra needed)."""
    folder = REPO_ROOT / "configs" / "data"
    cfg = OmegaConf.merge(
        OmegaConf.load(folder / "_base.yaml"), OmegaConf.load(folder / "demo.yaml")
    )
    cfg.pop("defaults")
    cfg.root = str(root)
    cfg.cache_dir = str(Path(root).parent)  # the test's own data cache: generated unasked
    for key, value in {**DEMO_TEST_OVERRIDES, **overrides}.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory) -> DemoWorld:
    """A small demo world generated once per test session into a temp dir."""
    root = tmp_path_factory.mktemp("demo_world") / "demo"
    cfg = make_demo_cfg(root)
    manifest_path = ensure_demo_world(root, cfg, progress=False)
    return DemoWorld(root, manifest_path, cfg, load_manifest(cfg))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERIAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.serial)
