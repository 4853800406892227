"""Whole LM stages on a synthetic world (folder manifest + token shards, tiny model)."""

import json
import shutil

import pytest
import torch
from lm_fixtures import compose_train, write_synthetic_world

from vidchat.errors import VidchatError
from vidchat.model.checkpoint import load_consolidated
from vidchat.training.lm.entry import run


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    return root, write_synthetic_world(root)


def test_pretrain_then_sft_write_checkpoints_exports_and_reports(world):
    root, overrides = world
    report = run(compose_train([*overrides, "stage=pretrain", "debug=default"]))
    run_dir = root / "checkpoints" / "pretrain-debug"
    assert report["step"] == 4 and (run_dir / "ckpt" / "last.ckpt").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val_loss"] > 0 and metrics["unigram_loss"] > 0
    assert [r["step"] for r in metrics["val_curve"]] == [2.0, 4.0]
    assert (run_dir / "val_curve.csv").read_text().startswith("step,val_loss")
    model, layout, meta = load_consolidated(run_dir / "lm")
    assert meta["stage"] == "pretrain" and meta["step"] == 4
    assert layout.vocab.size == model.cfg.vocab_size
    assert layout.cfg.chunk_order == "frame_interleaved"  # the model config's order is recorded
    # an export from before `chunk_order` existed loads in the order it was trained with
    doc = json.loads((run_dir / "lm.json").read_text())
    del doc["layout"]["chunk_order"]
    (run_dir / "old.json").write_text(json.dumps(doc))
    shutil.copy(run_dir / "lm.safetensors", run_dir / "old.safetensors")
    assert load_consolidated(run_dir / "old")[1].cfg.chunk_order == "video_first"

    # SFT finds the pretrain export by itself (run_name pretrain) and starts from its weights.
    pre = run(
        compose_train(
            [
                *overrides,
                "stage=pretrain",
                "debug=default",
                "run_name=pretrain",
                "stage.max_steps=1",
            ]
        )
    )
    assert pre["step"] == 1
    sft = run(compose_train([*overrides, "stage=sft", "debug=default", "stage.max_steps=2"]))
    assert sft["step"] == 2 and sft["train_examples"] > 0
    sft_model, _, sft_meta = load_consolidated(root / "checkpoints" / "sft-debug" / "lm")
    assert sft_meta["stage"] == "sft"
    pre_model, _, _ = load_consolidated(root / "checkpoints" / "pretrain" / "lm")
    # started from pretrain: two small steps keep the weights close, unlike a fresh init
    diff = (sft_model.embed_tokens.weight - pre_model.embed_tokens.weight).abs().mean()
    assert diff < 0.5 * pre_model.embed_tokens.weight.abs().mean()


def test_compiled_blocks_train_like_eager_ones(world):
    """`model.compile=<backend>` compiles each backbone block (here `aot_eager`: dynamo's graph
    capture and AOTAutograd without code generation, the parts that break on a new model; GPUs
    use `inductor`); the run matches the eager one, and an unknown backend is one error."""
    from vidchat.errors import ConfigError

    root, overrides = world
    base = [*overrides, "stage=pretrain", "debug=default", "stage.max_steps=2"]
    eager = run(compose_train([*base, "run_name=eager"]))
    from torch._dynamo.utils import counters

    counters.clear()
    compiled = run(compose_train([*base, "run_name=compiled", "model.compile=aot_eager"]))
    assert counters["stats"]["unique_graphs"] >= 1  # the blocks did run as captured graphs
    assert compiled["step"] == 2
    assert compiled["val_loss"] == pytest.approx(eager["val_loss"], abs=1e-5)
    with pytest.raises(ConfigError, match="model.compile='nvfuser' is not a torch.compile backend"):
        run(compose_train([*base, "run_name=bad", "model.compile=nvfuser"]))


def test_tokenize_settings_that_would_be_ignored_are_errors(world, tmp_path):
    """`data.video.size` must be the video tokenizer's (the LM stages see clips at its size),
    and the stage's own tokenize run cannot split over machines."""
    from vidchat.errors import ConfigError

    root, overrides = world
    from vidchat.data.config import VideoRead

    with pytest.raises(
        ConfigError,
        match=r"data.video.fps=25 but the video tokenizer \(.*meta"
        r"\.json\) reads 4 frames/s; set data.video.fps=4",
    ):
        run(compose_train([*overrides, "stage=pretrain", "debug=default", "data.video.fps=25"]))
    spec = {"frame_rate": 8.0, "frame_size": [64, 64]}
    VideoRead(fps=8, size=64).check_tokenizer(spec, "demo64")
    with pytest.raises(
        ConfigError,
        match=r"data.video.size=256 but the video tokenizer \(demo64\)"
        r" reads 64x64 frames; set data.video.size=64",
    ):
        VideoRead(fps=8, size=256).check_tokenizer(spec, "demo64")
    fresh = [
        *overrides,
        f"data.tokens_dir={tmp_path / 'tokens'}",
        "stage=pretrain",
        "debug=default",
        "stage.tokenize.num_shards=2",
    ]
    with pytest.raises(ConfigError, match=r"stage.tokenize.num_shards=2 splits tokenize"):
        run(compose_train(fresh))


def test_sft_without_any_pretrained_lm_is_one_clear_error(tmp_path):
    overrides = write_synthetic_world(tmp_path, n_conversations=2)
    with pytest.raises(
        VidchatError,
        match=r"found none at .*pretrain/lm\.json or .*demo/lm\.json; run `python train\.py stage=pretrain` first",
    ):
        run(compose_train([*overrides, "stage=sft", "debug=default"]))


def test_packing_trains_too(world):
    root, overrides = world
    report = run(
        compose_train(
            [
                *overrides,
                "stage=pretrain",
                "debug=default",
                "stage.batching=pack",
                "run_name=packed",
                "stage.max_steps=2",
            ]
        )
    )
    assert report["step"] == 2 and torch.isfinite(torch.tensor(report["val_loss"]))


@pytest.mark.parametrize("video_head", ["depth", "maskgit"])
def test_grouped_heads_train_export_and_answer(world, video_head):
    # The whole stage with a video head and a depth audio head: train, export, reload, generate.
    from vidchat.model import Role, Segment
    from vidchat.model.generate import SamplingConfig, generate

    root, overrides = world
    heads = [f"model.layout.video_head={video_head}", "model.layout.audio_head=depth"]
    report = run(
        compose_train(
            [
                *overrides,
                *heads,
                "stage=pretrain",
                "debug=default",
                f"run_name={video_head}",
                "stage.max_steps=2",
            ]
        )
    )
    assert report["step"] == 2 and torch.isfinite(torch.tensor(report["val_loss"]))
    model, layout, _ = load_consolidated(root / "checkpoints" / video_head / "lm")
    assert type(model.heads["audio"]).__name__ == "DepthHead"
    assert model.heads["video"].kind == video_head
    assert layout.cfg.video_head == video_head and layout.cfg.audio_head == "depth"
    h, w = layout.cfg.video_grid
    partner = Segment(
        Role.PARTNER,
        torch.zeros(4, h, w, dtype=torch.long),
        torch.zeros(layout.K, 6, dtype=torch.long),
    )
    out = generate(
        model, layout, layout.prompt([partner]), max_chunks=2, sampling=SamplingConfig(seed=0)
    )
    assert out.video[0].shape[1:] == (h, w) and out.audio[0].shape[0] == layout.K


@pytest.mark.slow
def test_demo_run_tokenizes_clips_its_shards_lack(demo_world, tmp_path):
    """The LM stage tokenizes the demo world itself, and again when the shards it made lack
    clips (a regenerated world, a deleted shard): only those are added."""
    import json as _json

    from tests.conftest import DEMO_TEST_OVERRIDES
    from vidchat.data.shards import ShardReader

    data = [f"data.{k}={_json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    overrides = [
        f"paths.root_dir={tmp_path}",
        f"data.root={demo_world.root}",
        *data,
        "stage=pretrain",
        "debug=default",
        "stage.max_steps=1",
        "stage.tokenize.clips_per_shard=5",
    ]
    run(compose_train(overrides))
    (shards,) = (tmp_path / "data_cache" / "tokens").iterdir()
    total = len(ShardReader(shards))
    assert total == len(demo_world.manifest.records)
    # the stage's own tokenize run took the user's stage.tokenize settings
    assert len(list(shards.glob("shard-*.index.json"))) == -(-total // 5)
    first = sorted(shards.glob("shard-*.index.json"))[0]
    first.unlink()  # some clips lost
    assert len(ShardReader(shards)) < total
    run(compose_train(overrides))
    assert len(ShardReader(shards)) == total
