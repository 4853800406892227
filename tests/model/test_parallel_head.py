"""Adding a head is one module plus one registry line (`parallel_head.py`, registered on
import): the layout, the model, training, export, loading and generation take it by its kind,
and nothing in vidchat names it."""

import json

import pytest
import torch
from conftest import demo_layout, random_segment
from parallel_head import ParallelHead
from uncached import generate_uncached

from vidchat.errors import ConfigError
from vidchat.model import Role, Segment, build_model
from vidchat.model.checkpoint import load_consolidated
from vidchat.model.generate import SamplingConfig, generate
from vidchat.model.heads.registry import HEADS

GREEDY = SamplingConfig.from_dict(
    {"video": {"temperature": 0}, "audio": {"temperature": 0}, "boundary": {"temperature": 0}}
)


def test_the_registry_builds_it_by_kind_and_checks_its_stream():
    assert HEADS["parallel"] is ParallelHead
    layout = demo_layout(video_head="parallel", audio_head="depth")
    model = build_model(
        {
            "dim": 32,
            "n_layers": 1,
            "n_heads": 2,
            "max_seq_len": 1024,
            "heads": {"parallel": {"layers": 1}},
        },
        layout,
    )
    assert type(model.heads["video"]) is ParallelHead and model.heads["video"].size == 16
    assert len(model.heads["video"].layers) == 1  # its settings come from model.heads.parallel
    with pytest.raises(ConfigError, match="serves video only"):
        demo_layout(audio_head="parallel")
    with pytest.raises(ConfigError, match=r"unknown model\.heads\.parallel keys \['passes'\]"):
        build_model(
            {"dim": 32, "n_layers": 1, "n_heads": 2, "heads": {"parallel": {"passes": 2}}}, layout
        )


def test_it_decides_a_frame_in_one_pass_whatever_the_sampling_says(gen):
    layout = demo_layout(video_head="parallel", audio_head="depth")
    torch.manual_seed(0)
    model = build_model({"dim": 32, "n_layers": 1, "n_heads": 2, "max_seq_len": 2048}, layout)
    head, passes = model.heads["video"], []
    head.register_forward_hook(lambda *_: passes.append(1))
    prompt = layout.prompt([random_segment(layout, Role.PARTNER, 0.5, gen)])
    out = generate(model.eval(), layout, prompt, max_chunks=1, sampling=GREEDY)  # 8 passes asked
    frames = out.video[0].shape[0]
    assert frames == 4 and len(passes) == frames
    cached = out.tokens
    full = generate_uncached(model, layout, prompt, max_chunks=1, sampling=GREEDY)
    assert torch.equal(cached, full.tokens)


@pytest.mark.slow
def test_it_trains_on_the_demo_world_and_loads_back(demo_world, tmp_path):
    from tests.conftest import DEMO_TEST_OVERRIDES
    from tests.training.lm_fixtures import compose_train
    from vidchat.training.lm.entry import run

    data = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    overrides = [
        f"paths.root_dir={tmp_path}",
        f"data.root={demo_world.root}",
        *data,
        "model.layout.video_head=parallel",
        "model.layout.audio_head=depth",
        "stage=pretrain",
        "debug=default",
        "stage.max_steps=12",
        "trainer.val_check_interval=6",
        "stage.optim.lr=3e-3",
    ]
    run(compose_train(overrides))
    run_dir = tmp_path / "checkpoints" / "pretrain-debug"
    curve = json.loads((run_dir / "metrics.json").read_text())["val_curve"]
    assert curve[-1]["loss"] < curve[0]["loss"], curve
    model, layout, _ = load_consolidated(run_dir / "lm")
    assert type(model.heads["video"]) is ParallelHead
    h, w = layout.cfg.video_grid
    partner = Segment(
        Role.PARTNER,
        torch.zeros(4, h, w, dtype=torch.long),
        torch.zeros(layout.K, 13, dtype=torch.long),
    )
    out = generate(model, layout, layout.prompt([partner]), max_chunks=1, sampling=GREEDY)
    assert out.video[0].shape == (4, h, w)
