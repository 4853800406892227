"""A fresh run (`resume=false`) deletes nothing of the previous run's until it has finished
(#30 item 2): one that fails on a damaged input leaves the previous `ckpt/` intact, and one that
finishes replaces it."""

from __future__ import annotations

import hashlib

import pytest
from lm_fixtures import compose_train, write_synthetic_world

from vidchat.errors import VidchatError
from vidchat.training.lm.entry import run

pytestmark = pytest.mark.timeout(300)


def _digest(folder) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_a_failed_fresh_run_leaves_the_previous_checkpoints_intact(tmp_path):
    overrides = [*write_synthetic_world(tmp_path), "stage=pretrain", "debug=default"]
    run(compose_train(overrides))
    ckpt = tmp_path / "checkpoints" / "pretrain-debug" / "ckpt"
    before = _digest(ckpt)
    assert "last.ckpt" in before
    shard = next((tmp_path / "tokens").glob("shard-*.npy"))
    data = bytearray(shard.read_bytes())
    data[-64:] = bytes(64)  # same size, other bytes: found when training first reads it
    shard.write_bytes(bytes(data))
    with pytest.raises(VidchatError, match="checksum"):
        run(compose_train(overrides))  # resume=false: a fresh run
    assert _digest(ckpt) == before  # still there to resume from
    assert not ckpt.with_name("ckpt.previous").exists()


def test_a_finished_fresh_run_replaces_the_previous_checkpoints(tmp_path):
    overrides = [*write_synthetic_world(tmp_path), "stage=pretrain", "debug=default"]
    run(compose_train(overrides))
    ckpt = tmp_path / "checkpoints" / "pretrain-debug" / "ckpt"
    (ckpt / "left-by-the-old-run").write_text("x")
    run(compose_train([*overrides, "seed=1"]))
    assert (ckpt / "last.ckpt").is_file() and not (ckpt / "left-by-the-old-run").exists()
    assert not ckpt.with_name("ckpt.previous").exists()


def test_a_debug_sft_starts_from_the_debug_pretrain_and_says_when_it_takes_the_demo_lm(
    tmp_path, caplog
):
    """`stage=sft debug=default` (run `sft-debug`) once started from the shipped demo LM without
    a word, because the debug pretrain had written to `pretrain-debug` (#30 item 10)."""
    import logging

    from vidchat.training.config import LMStageConfig, PathsConfig
    from vidchat.training.lm.stage import resolve_init

    paths = PathsConfig(
        checkpoint_dir=str(tmp_path / "checkpoints"), demo_checkpoint_dir=str(tmp_path / "demo")
    )
    for folder in ("checkpoints/pretrain-debug", "checkpoints/pretrain", "demo"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "lm.json").write_text("{}")
    modes = {
        "single": "after_ref",
        "listening": "responder",
        "dialogue": "responder",
        "multi_turn": "responder",
    }
    sft = LMStageConfig(name="sft", init_from="auto", loss_modes=modes)
    assert resolve_init(sft, paths, "sft-debug") == tmp_path / "checkpoints/pretrain-debug/lm"
    assert resolve_init(sft, paths, "sft") == tmp_path / "checkpoints/pretrain/lm"
    for folder in ("checkpoints/pretrain-debug", "checkpoints/pretrain"):
        (tmp_path / folder / "lm.json").unlink()
    with caplog.at_level(logging.WARNING, logger="vidchat"):
        assert resolve_init(sft, paths, "sft-debug") == tmp_path / "demo/lm"
    assert "starts from the shipped demo LM" in caplog.text and "pretrain-debug" in caplog.text


def test_csv_versions_that_logged_nothing_are_removed_at_the_next_start(tmp_path):
    """A run killed before its first log step left an empty `csv/version_N` (#30 item 10)."""
    from vidchat.training.run_dir import csv_version

    logs = tmp_path / "csv"
    for n, text in ((0, "step,loss\n0,1.5\n"), (1, None), (2, "step,loss\n")):
        (logs / f"version_{n}").mkdir(parents=True)
        (logs / f"version_{n}" / "hparams.yaml").write_text("{}\n")
        if text is not None:
            (logs / f"version_{n}" / "metrics.csv").write_text(text)
    assert csv_version(tmp_path, "csv", resume=True) == 0  # continues the log that has rows
    assert sorted(p.name for p in logs.iterdir()) == ["version_0"]
    assert (logs / "version_0" / "metrics.csv").read_text() == "step,loss\n0,1.5\n"
