"""Raw demo sources -> `vidchat.curate` -> `stage=tokenize` -> `stage=pretrain`, through the
same config groups as the README's curation commands."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from vidchat.cli import CONFIG_DIR
from vidchat.training.lm.entry import run as run_lm
from vidchat.training.tokenize.stage import tokenize


@pytest.mark.slow
def test_curated_release_tokenizes_and_pretrains(curated, tmp_path):
    root, report = curated
    overrides = [
        f"paths.root_dir={tmp_path}",
        "data=speakervid",
        f"data.root={root}",
        "data.video.size=32",
        "data.video.fps=8",
        "data.subset=all",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        tok = compose("train", overrides=[*overrides, "stage=tokenize"])
        pre = compose("train", overrides=[*overrides, "stage=pretrain", "debug=default"])
    summary = tokenize(tok)
    assert summary["clips_tokenized"] == report["clips"] and not summary.get("clips_failed")
    result = run_lm(pre)
    assert result["step"] == 4 and result["train_examples"] > 0
