"""Consolidated LM checkpoints carry a checksum of their weights, checked on load: damaged or
swapped files are one line naming the file, never a model that silently generates."""

from __future__ import annotations

import json

import pytest
from conftest import demo_layout, tiny_model

from vidchat.errors import VidchatError
from vidchat.model.checkpoint import export_consolidated, load_consolidated


@pytest.fixture
def stem(tmp_path):
    layout = demo_layout()
    return export_consolidated(tiny_model(layout), layout, tmp_path / "lm")


def test_round_trip_then_each_damage_is_one_line(stem, tmp_path):
    load_consolidated(stem)  # intact: loads
    weights, doc = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    intact_weights, intact_doc = weights.read_bytes(), doc.read_text()
    other = export_consolidated(tiny_model(demo_layout(), seed=1), demo_layout(), tmp_path / "b")
    damages = {
        "truncated weights": (
            lambda: weights.write_bytes(intact_weights[:-100]),
            r"lm\.safetensors: weights do not match the checksum",
        ),
        "other weights": (
            lambda: weights.write_bytes(other.with_suffix(".safetensors").read_bytes()),
            r"lm\.safetensors: weights do not match the checksum",
        ),
        "truncated config": (lambda: doc.write_text(intact_doc[:40]), r"lm\.json: not valid JSON"),
        "garbled config": (lambda: doc.write_text('["x"]'), r"lm\.json: not a vidchat LM"),
    }
    for _, (damage, message) in damages.items():
        damage()
        with pytest.raises(VidchatError, match=message):
            load_consolidated(stem)
        weights.write_bytes(intact_weights)
        doc.write_text(intact_doc)
    assert "weights_sha256" in json.loads(intact_doc)
