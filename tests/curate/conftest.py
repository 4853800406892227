"""Curation fixtures: raw demo sources with known answers, one local Ray for the session, and
one curated release of those sources (made once, read by several tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidchat.curate.config import CurateConfig
from vidchat.data.demo_world.raw import RawSourceConfig, generate_raw_sources

pytest.importorskip("ray")
pytest.importorskip("scenedetect")
pytest.importorskip("dlib")


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray with two worker CPUs (started as the curation run starts its own), shared by
    the curation tests."""
    from vidchat.utils.ray_session import ray_session

    with ray_session(None, 2):
        yield


@pytest.fixture(scope="session")
def raw_sources(tmp_path_factory) -> Path:
    """Two raw demo sources (about 28 s each, 3-5 shots, one 2 s shot each) with truths."""
    root = tmp_path_factory.mktemp("raw")
    generate_raw_sources(root, RawSourceConfig(num_sources=2), progress=False)
    return root


@pytest.fixture(scope="session")
def one_raw_source(tmp_path_factory) -> tuple[Path, dict]:
    """One short raw demo source (5 turns) -> (its path, its truth)."""
    root = tmp_path_factory.mktemp("raw_one")
    (truth,) = generate_raw_sources(root, RawSourceConfig(num_sources=1, turns=5), progress=False)
    return root / "raw0000.mp4", truth


def truths(root: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "truth").glob("*.json"))}


def curate_config(raw: Path, out: Path, **kw) -> CurateConfig:
    return CurateConfig(input=str(raw), output=str(out), workers=2, progress=False, **kw)


@pytest.fixture(scope="session")
def curated(raw_sources, ray_cluster, tmp_path_factory) -> tuple[Path, dict]:
    """The release curated from `raw_sources` with two workers -> (root, report)."""
    from vidchat.curate.run import curate

    out = tmp_path_factory.mktemp("curated")
    report = curate(curate_config(raw_sources, out))
    return out, report
