"""Data sources are read by `data.kind` from a registry: a new source is one registered reader,
which gets the pairing settings and whose manifest goes through the same subset and branch
filters; an unregistered kind is one config error naming the known ones."""

from __future__ import annotations

import pytest

from vidchat.data import manifest as manifests
from vidchat.data.config import DataConfig
from vidchat.data.records import ClipRecord, Manifest, TurnPair
from vidchat.data.sources import registry
from vidchat.errors import ConfigError

pytestmark = pytest.mark.timeout(60)


def test_an_unknown_kind_is_one_config_error_naming_the_known_kinds():
    with pytest.raises(
        ConfigError, match=r"data.kind must be one of \['demo', 'folder', 'speakervid'\]"
    ):
        DataConfig(kind="webdataset", root="/data")


def test_a_new_source_is_one_registered_reader(monkeypatch, tmp_path):
    monkeypatch.setitem(registry.SOURCES, "two_clips", None)  # removed again after the test
    seen = {}

    @registry.register_source("two_clips")
    def two_clips(data, history):
        seen.update(root=data.root, **history)
        a, b = (
            ClipRecord(
                f"c{i}", str(tmp_path / f"c{i}.mp4"), conversation="conv", speaker_id=f"s{i}"
            )
            for i in range(2)
        )
        pairs = [TurnPair("p0", "dialogue", a, b), TurnPair("p1", "listening", a, b)]
        return Manifest([a, b], pairs, {"conv": "train"})

    data = DataConfig.from_cfg(
        {
            "kind": "two_clips",
            "root": str(tmp_path),
            "pairs": {"branches": ["dialogue"], "history_turns": 1},
        }
    )
    got = manifests.load_manifest(data)
    assert seen == {
        "root": str(tmp_path),
        "history_turns": 1,
        "history_seconds": 60.0,
        "max_gap_seconds": None,
    }
    assert [p.pair_id for p in got.pairs] == ["p0"]  # the branch filter applied to it too


def test_a_source_registers_its_own_keys_and_gets_them_as_options(monkeypatch, tmp_path):
    """Keys a source registered as its own (the demo world's generator settings, here a new
    source's `depth_of_field`) move from the data config's top level into `data.options`; no
    kind is special-cased, and an unregistered key stays an error."""
    monkeypatch.setitem(registry.SOURCES, "rendered", None)
    monkeypatch.setitem(registry.SOURCE_OPTIONS, "rendered", frozenset())
    registry.register_source("rendered", options=["depth_of_field"])(lambda data, history: None)
    data = DataConfig.from_cfg({"kind": "rendered", "root": str(tmp_path), "depth_of_field": 2})
    assert data.options == {"depth_of_field": 2}
    demo = DataConfig.from_cfg({"kind": "demo", "root": str(tmp_path), "num_identities": 5})
    assert demo.options == {"num_identities": 5}
    with pytest.raises(ConfigError, match="depth_of_field"):
        DataConfig.from_cfg({"kind": "demo", "root": str(tmp_path), "depth_of_field": 2})


def test_the_built_in_sources_keep_their_own_keys_in_the_same_form(tmp_path):
    """A folder's `manifest` and the release's `cut`, `video_dir`, ... are options like any
    source's: gathered into `data.options`, typed by the source, and an error under another
    kind."""
    folder = DataConfig.from_cfg({"kind": "folder", "root": str(tmp_path), "manifest": "m.jsonl"})
    assert folder.options == {"manifest": "m.jsonl"}
    release = {"kind": "speakervid", "root": str(tmp_path), "cut": False, "video_dir": "/yt"}
    assert DataConfig.from_cfg(release).options == {"cut": False, "video_dir": "/yt"}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['cut'\]"):
        DataConfig.from_cfg({"kind": "folder", "root": str(tmp_path), "cut": False})
    bad = DataConfig.from_cfg({**release, "cut": "sometimes"})
    with pytest.raises(ConfigError, match=r"data\.cut must be"):
        manifests.load_manifest(bad)
