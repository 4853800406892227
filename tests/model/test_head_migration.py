"""Checkpoints saved before heads were one class each still load and compute the same: their
`lm.json` head flags become `stream_heads`, their `depth.*` / `frame_head.*` weights become the
streams' `heads.*` (`vidchat.model.checkpoint.migrate_model_keys` / `migrate_state`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import demo_layout, random_segment
from test_depth import depth_model

from vidchat.model import Role, pad_batch
from vidchat.model.checkpoint import configs_of, export_consolidated, load_consolidated

pytestmark = pytest.mark.timeout(120)

BEFORE_HEADS = Path(__file__).parent / "data" / "lm_before_heads.json"


def _as_saved_before(stem: Path, shared_depth: bool) -> None:
    """Rewrite an export in the format of the release before heads: flags in `model`, one
    `depth.*` transformer (shared by both streams when both were depth), `frame_head.*`."""
    from safetensors.torch import load_file, save_file

    doc = json.loads(stem.with_suffix(".json").read_text())
    heads = doc["model"].pop("stream_heads")
    video, audio = heads["video"], heads["audio"]
    doc["model"].update(
        max_group=16,
        frame_head=video["kind"] == "maskgit",
        depth_head="depth" in (video["kind"], audio["kind"]),
        depth_layers=video.get("layers", 2),
        depth_dim=video.get("dim"),
        frame_prev=video.get("prev", False),
    )
    state, old = load_file(str(stem.with_suffix(".safetensors"))), {}
    for name, t in state.items():
        if name.startswith("heads.video.") and video["kind"] == "maskgit":
            old["frame_head." + name.removeprefix("heads.video.")] = t
        elif name.startswith("heads.audio.") or (
            name.startswith("heads.video.") and not shared_depth
        ):
            old["depth." + name.split(".", 2)[2]] = t
        elif not name.startswith("heads."):
            old[name] = t
    save_file(old, str(stem.with_suffix(".safetensors")))
    doc.pop("weights_sha256")
    stem.with_suffix(".json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "video_head, audio_head", [("maskgit", "depth"), ("depth", "depth"), ("depth", "flat")]
)
def test_an_export_from_before_heads_loads_and_computes_the_same(
    tmp_path, gen, video_head, audio_head
):
    layout = demo_layout(video_head=video_head, audio_head=audio_head)
    model = depth_model(layout).eval()
    shared = video_head == audio_head == "depth"
    if shared:  # one transformer served both streams: give both heads the same weights
        model.heads["video"].load_state_dict(model.heads["audio"].state_dict())
    stem = export_consolidated(model, layout, tmp_path / "lm", dtype=None)
    _as_saved_before(stem, shared)
    loaded, loaded_layout, _ = load_consolidated(stem)
    assert dataclasses.asdict(loaded.cfg) == dataclasses.asdict(model.cfg)
    seq = layout.build([random_segment(layout, Role.RESPONDER, 1.0, gen)])
    b = pad_batch([seq])
    args = (b["tokens"], b["roles"], b["next_slots"])
    kw = {"depth": b["depth"], "modality": b["modality"]}
    with torch.no_grad():
        torch.testing.assert_close(loaded(*args, **kw), model(*args, **kw), rtol=0, atol=0)


def test_the_64px_lm_json_shipped_before_heads_becomes_stream_heads():
    """The `lm.json` of the 64 px responder shipped before heads (the VQ one, kept here without
    its weights) turns into the stream specs its weights were trained as."""
    doc = json.loads(BEFORE_HEADS.read_text())
    assert doc["model"]["frame_head"] is True and "stream_heads" not in doc["model"]
    specs = configs_of(doc)[0].stream_heads
    assert specs["video"] == {
        "kind": "maskgit",
        "stream": "video",
        "size": 64,
        "layers": 2,
        "dim": 96,
        "prev": True,
    }
    assert specs["audio"] == {"kind": "depth", "stream": "audio", "size": 2, "layers": 2, "dim": 96}


def test_a_training_checkpoint_from_before_heads_resumes(gen):
    """Lightning's resume loads `state_dict` after `on_load_checkpoint`, which renames the old
    `depth.*` / `frame_head.*` weights."""
    from vidchat.training.lm.module import LMTrainingModule
    from vidchat.training.lm.noise import NoiseConfig
    from vidchat.training.optim import OptimConfig

    layout = demo_layout(video_head="maskgit", audio_head="depth")
    module = LMTrainingModule(
        depth_model(layout), layout, optim=OptimConfig(), noise=NoiseConfig(), total_steps=1
    )
    old = {}
    for name, t in module.state_dict().items():
        for new, was in (
            ("model.heads.video.", "model.frame_head."),
            ("model.heads.audio.", "model.depth."),
        ):
            name = name.replace(new, was)
        old[name] = t.clone()
    checkpoint = {"state_dict": old, "vidchat_layout": dataclasses.asdict(layout.cfg)}
    fresh = LMTrainingModule(
        depth_model(layout, seed=1), layout, optim=OptimConfig(), noise=NoiseConfig(), total_steps=1
    )
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])  # strict: every weight found
    for name, t in module.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], t), name
