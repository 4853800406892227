"""The model's runtime settings (`vidchat.training.lm.runtime`): checked values, and checkpoint
names that do not change under them, also as DeepSpeed's zero_to_fp32 names parameters."""

from __future__ import annotations

import pytest
import torch

from vidchat.errors import ConfigError
from vidchat.model import LayoutConfig, SequenceLayout, build_model
from vidchat.model.checkpoint import export_state_dict, load_consolidated
from vidchat.training.lm.export import _model_state
from vidchat.training.lm.runtime import apply_runtime, loss_chunk

pytestmark = pytest.mark.timeout(60)


def _model():
    layout = SequenceLayout(LayoutConfig(8, (4, 4), 1024, 25, 2, 1024))
    torch.manual_seed(0)
    return layout, build_model({"dim": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 256}, layout)


def test_a_wrapped_model_exports_under_its_own_names(tmp_path):
    """zero_to_fp32 names parameters as the engine saw them: with `checkpoint_wrapper`'s
    `_checkpoint_wrapped_module.` inside. The export strips it, so the consolidated file loads."""
    layout, model = _model()
    apply_runtime(model, {"grad_checkpointing": True})
    as_deepspeed = {f"model.{n}": p.detach() for n, p in model.named_parameters()}
    assert any("_checkpoint_wrapped_module." in k for k in as_deepspeed)
    stem = export_state_dict(
        _model_state(as_deepspeed), model.cfg, layout.cfg, tmp_path / "lm", dtype=None
    )
    loaded, _, _ = load_consolidated(stem)  # strict: every weight found under its name
    for name, t in loaded.state_dict().items():
        torch.testing.assert_close(t, model.state_dict()[name], rtol=0, atol=0)


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "many"])
def test_a_bad_loss_chunk_is_one_config_error(bad):
    with pytest.raises(ConfigError, match="model.loss_chunk must be null or a positive integer"):
        loss_chunk({"loss_chunk": bad})
