"""The report keeps each sample's metric details, e.g. the emotion the demo oracle read."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from vidchat.eval.config import EvalConfig
from vidchat.eval.runner import Scoring, score_system


def _item(pair_id: str, emotion: str):
    clip = SimpleNamespace(frames=np.zeros((4, 8, 8, 3), np.uint8), audio=np.zeros(800, np.float32))
    responder = SimpleNamespace(labels={"emotion": emotion}, speaker_id="id00")
    pair = SimpleNamespace(pair_id=pair_id, branch="dialogue", responder=responder, labels={})
    return SimpleNamespace(pair=pair, partner=clip, target=clip, reference=None)


def test_rows_carry_the_oracle_reading():
    classify = f"{__name__}:_always_sad"
    cfg = EvalConfig.from_cfg(
        {
            "data": {"kind": "demo", "root": "unused"},
            "metric_options": {"demo_emotion": {"classify": classify}},
        }
    )
    sc = Scoring(cfg, ["demo_emotion"], fps=8.0, sample_rate=16000, gallery={}, failures=[])
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    items = [_item("a", "sad"), _item("b", "happy")]
    out = score_system("model", ((it, frames, np.zeros(4000, np.float32)) for it in items), sc)
    rows = {r["pair_id"]: r for r in out["samples"]}
    assert (
        rows["a"]["metrics"]["demo_emotion"] == 1.0 and rows["b"]["metrics"]["demo_emotion"] == 0.0
    )
    assert rows["b"]["details"]["demo_emotion"] == {"predicted": "sad", "expected": "happy"}
    assert out["overall"]["demo_emotion"]["mean"] == 0.5 and not sc.failures


def _always_sad(frames: np.ndarray) -> str:
    return "sad"
