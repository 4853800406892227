"""Checkpoints written before a model knob was retired still load (the shipped demo LMs carry
`spatial_layers: 0`), and a retired knob set to a value that never worked is one clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vidchat.errors import VidchatError
from vidchat.model.checkpoint import load_consolidated, migrate_model_keys

pytestmark = pytest.mark.timeout(60)

SHIPPED = Path(__file__).resolve().parents[2] / "vidchat" / "assets" / "demo" / "lm"


def test_a_checkpoint_with_retired_keys_loads(tmp_path):
    doc = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert doc["model"]["spatial_layers"] == 0  # written before the knob was retired
    model, _, _ = load_consolidated(SHIPPED)
    assert not hasattr(model.cfg, "spatial_layers")


def test_a_retired_knob_with_a_value_that_never_worked_is_one_error(tmp_path):
    for suffix in (".json", ".safetensors"):
        shutil.copy(SHIPPED.with_suffix(suffix), tmp_path / f"lm{suffix}")
    doc = json.loads((tmp_path / "lm.json").read_text())
    doc["model"]["spatial_layers"] = 2
    (tmp_path / "lm.json").write_text(json.dumps(doc))
    with pytest.raises(VidchatError, match=r"model.spatial_layers=2 is retired"):
        load_consolidated(tmp_path / "lm")
    assert "grad_checkpointing" not in migrate_model_keys({"grad_checkpointing": True, "dim": 8})
