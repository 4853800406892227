"""The whole path on the SpeakerVid-5M release layout, with real faces and real speech: cut the
clips from source videos, tokenize, pretrain, SFT, and evaluate on testset.json's pair. The same
commands as the README's data section, through the same config groups (`data=speakervid`)."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir

from tests.release_sample import real_release
from vidchat.cli import CONFIG_DIR
from vidchat.data.speakervid.cut import run_cut
from vidchat.eval.runner import run as run_eval
from vidchat.training.lm.entry import run as run_lm
from vidchat.training.tokenize.stage import tokenize


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = real_release(tmp_path_factory.mktemp("release_path"))
    report = run_cut(
        root / "release", root / "sources", root / "release" / "videos", progress=False
    )
    assert report["cut"] == 12 and not report["missing_source"] and not report["broken_source"]
    return root


def _cfg(root, name: str, *extra: str):
    overrides = [
        f"paths.root_dir={root}",
        "data=speakervid",
        f"data.root={root / 'release'}",
        "data.video.size=32",
        *extra,
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.mark.slow
def test_release_tokenize_pretrain_sft_and_eval(release):
    summary = tokenize(_cfg(release, "train", "stage=tokenize"))
    assert summary["clips_tokenized"] == 12 and not summary.get("clips_failed")
    # the release's SFT subset is the data default; pretraining reads every clip
    pre = run_lm(
        _cfg(
            release,
            "train",
            "stage=pretrain",
            "debug=default",
            "data.subset=all",
            "run_name=pretrain",
        )
    )
    assert pre["step"] == 4 and pre["train_examples"] > 0
    sft = run_lm(_cfg(release, "train", "stage=sft", "debug=default", "stage.max_steps=2"))
    assert sft["step"] == 2 and sft["train_examples"] > 0
    checkpoint = release / "checkpoints" / "sft-debug" / "lm"
    report = run_eval(
        _cfg(
            release,
            "eval",
            f"checkpoint={checkpoint}",
            "device=cpu",
            "metrics=[psnr,ssim,identity,lip_sync]",
            "systems=[model,ground_truth]",
        )
    )
    assert report["num_pairs"] == 1  # VidChatBench's pair from testset.json
    truth = report["systems"]["ground_truth"]["overall"]
    assert truth["psnr"]["mean"] >= 60 and truth["psnr"]["n"] == 1
    model = report["systems"]["model"]["overall"]
    assert 0 < model["psnr"]["mean"] < truth["psnr"]["mean"]
    written = json.loads((release / "outputs" / "eval" / "report.json").read_text())
    assert written["num_pairs"] == 1
