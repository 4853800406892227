"""The VidChatBench runner end to end on the small demo world and a tiny saved responder."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import DEMO_TEST_OVERRIDES
from vidchat.cli import CONFIG_DIR
from vidchat.errors import VidchatError
from vidchat.eval.report import aggregate, markdown_table, summarize
from vidchat.eval.runner import run

METRICS = ["psnr", "ssim", "fid", "demo_lip_sync", "demo_identity", "demo_emotion"]


def eval_cfg(demo_world, checkpoint, tmp_path, *extra):
    overrides = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    overrides += [
        f"data.root={demo_world.root}",
        f"checkpoint={checkpoint}",
        f"output_dir={tmp_path / 'eval'}",
        f"metrics=[{','.join(METRICS)}]",
        "max_pairs=2",
        "device=cpu",
        *extra,
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("eval", overrides=overrides)


def test_report_has_every_system_and_ground_truth_is_the_ceiling(
    demo_world, saved_responder, tmp_path
):
    report = run(eval_cfg(demo_world, saved_responder, tmp_path))
    assert set(report["systems"]) == {"model", "untrained", "tokenized", "ground_truth"}
    truth = report["systems"]["ground_truth"]["overall"]
    assert truth["psnr"]["mean"] >= 60  # the ground truth against itself: capped PSNR
    assert truth["ssim"]["mean"] == pytest.approx(1.0)
    assert truth["demo_identity"]["mean"] == 1.0 and truth["demo_emotion"]["mean"] == 1.0
    assert truth["demo_lip_sync"]["mean"] > 0.6  # lag 0; chance is about 0
    model = report["systems"]["model"]["overall"]
    assert model["psnr"]["mean"] < truth["psnr"]["mean"]
    # the round trip through the (random, tiny) tokenizers loses detail; every pair is scored
    tokenized = report["systems"]["tokenized"]
    assert tokenized["overall"]["psnr"]["mean"] < truth["psnr"]["mean"]
    assert tokenized["overall"]["psnr"]["n"] == 2
    # FID needs a local feature network: reported as unavailable with the reason, not fatal.
    assert report["systems"]["model"]["unavailable"]["fid"]
    written = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert written["num_pairs"] == 2
    assert "| ground_truth | all |" in (tmp_path / "eval" / "report.md").read_text()


def test_unknown_metric_fails_before_any_work(demo_world, saved_responder, tmp_path):
    with pytest.raises(VidchatError, match="unknown metric 'sharpness'"):
        run(eval_cfg(demo_world, saved_responder, tmp_path, "metrics=[psnr,sharpness]"))


def test_summaries_and_table():
    assert summarize([1.0, 3.0]) == {"mean": 2.0, "ci95": pytest.approx(1.96), "n": 2}
    assert summarize([None, float("nan")])["n"] == 0
    rows = [
        {"branch": "dialogue", "metrics": {"psnr": 20.0}},
        {"branch": "multi_turn", "metrics": {"psnr": None}},
    ]
    agg = aggregate(rows, ["psnr"])
    assert agg["overall"]["psnr"]["n"] == 1 and agg["by_branch"]["multi_turn"]["psnr"]["n"] == 0
    table = markdown_table({"systems": {"m": agg}}, ["psnr"])
    assert "| m | all | 1 | 20 |" in table and "| m | multi_turn | 0 | – |" in table
