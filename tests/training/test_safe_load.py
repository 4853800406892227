"""No code path unpickles code: a crafted checkpoint is refused, and its code never runs."""

from __future__ import annotations

import pytest
import torch
from lm_fixtures import compose_train, write_synthetic_world

from vidchat.errors import VidchatError
from vidchat.training.lm.entry import run
from vidchat.training.lm.export import export_from_checkpoint


class _Payload:
    """Unpickling this runs code: it creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "vidchat_model_config": {}, "evil": _Payload(marker)}, path)
    return path


def test_export_refuses_a_checkpoint_holding_code(tmp_path):
    marker = tmp_path / "pwned"
    crafted = _crafted(tmp_path / "last.ckpt", marker)
    with pytest.raises(VidchatError, match=r"last\.ckpt: refused to load") as info:
        export_from_checkpoint(crafted, tmp_path / "lm")
    assert not marker.exists() and not (tmp_path / "lm.json").exists()
    message = str(info.value)  # names what it would run, and never advises running it
    assert "it names " in message and "weights_only=False" not in message and "\n" not in message
    crafted.write_bytes(crafted.read_bytes()[:100])  # truncated: one line naming it
    with pytest.raises(VidchatError, match=r"last\.ckpt: not a readable checkpoint"):
        export_from_checkpoint(crafted, tmp_path / "lm")


def test_resume_refuses_a_checkpoint_holding_code(tmp_path):
    overrides = write_synthetic_world(tmp_path)
    marker = tmp_path / "pwned"
    _crafted(tmp_path / "checkpoints" / "pretrain-debug" / "ckpt" / "last.ckpt", marker)
    with pytest.raises(VidchatError, match=r"last\.ckpt: refused to load"):
        run(compose_train([*overrides, "stage=pretrain", "debug=default", "resume=true"]))
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_resume_from_a_damaged_checkpoint_is_one_line(tmp_path, damage):
    overrides = write_synthetic_world(tmp_path)
    run(compose_train([*overrides, "stage=pretrain", "debug=default", "stage.max_steps=2"]))
    last = tmp_path / "checkpoints" / "pretrain-debug" / "ckpt" / "last.ckpt"
    data = bytearray(last.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2 :]
    else:
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # inside a stored tensor
    last.write_bytes(bytes(data))
    with pytest.raises(VidchatError, match=r"last\.ckpt: (truncated or )?garbled checkpoint"):
        run(compose_train([*overrides, "stage=pretrain", "debug=default", "resume=true"]))
