"""A killed writer's temp file of a target is removed, and nothing else: not a live writer's
(recently touched), not another file's (`ClipStreamWriter` calls this for every mp4 it writes;
tests/inference/test_cli.py checks it after a kill -9 of infer.py)."""

from __future__ import annotations

import os
import time

import pytest

from vidchat.utils.atomic import STALE_TEMP_S, remove_stale_temps_of

pytestmark = pytest.mark.timeout(30)


def test_only_stale_temps_of_the_same_target_go(tmp_path):
    old = time.time() - STALE_TEMP_S - 5
    stale = tmp_path / ".out.json.abc123.tmp"
    live = tmp_path / ".out.json.def456.tmp"
    other = tmp_path / ".other.json.abc123.tmp"
    for path in (stale, live, other):
        path.write_text("partial")
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert remove_stale_temps_of(tmp_path / "out.json") == [stale]  # a killed writer's
    assert live.exists() and other.exists()  # a live writer's; another target's
