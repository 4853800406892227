"""`stage=video_tokenizer|audio_codec|tokenize` run end to end on the test demo world (tiny sizes)."""

import json

import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import DEMO_TEST_OVERRIDES, REPO_ROOT
from vidchat.data.shards import ShardReader
from vidchat.tokenizers import build_audio_tokenizer, build_video_tokenizer
from vidchat.training.tokenize.stage import shard_dir_for, tokenize
from vidchat.training.tokenizers.stages import train_audio_codec, train_video_tokenizer


@pytest.fixture(scope="module")
def cfg(demo_world, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stages")
    world = [f"data.{k}={json.dumps(v)}" for k, v in DEMO_TEST_OVERRIDES.items()]
    overrides = [
        f"paths.root_dir={tmp}",
        f"data.root={demo_world.root}",
        *world,
        f"tokenizer.video.checkpoint={tmp}/vt",
        "tokenizer.video.model.channels=[8,8,8]",
        "tokenizer.video.model.code_dim=8",
        "tokenizer.video.model.codebook_size=64",
        f"tokenizer.audio.checkpoint={tmp}/ac",
        "tokenizer.audio.model.num_filters=2",
        "tokenizer.audio.model.hidden_size=8",
        "tokenizer.audio.model.codebook_size=64",
        "trainer.enable_progress_bar=false",
        "trainer.val_check_interval=3",
        "trainer.checkpoint_every_n_steps=null",
        "logger=none",
    ]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3"):
        return {
            name: compose("train", overrides=[f"stage={name}", *overrides])
            for name in ("video_tokenizer", "audio_codec", "tokenize")
        }


def test_tokenizer_stages_export_loadable_checkpoints_and_tokenize(cfg):
    c = cfg["video_tokenizer"]
    # By default a new run must not overwrite the demo tokenizers that the demo LM depends on.
    assert c.stage.export.endswith("checkpoints/tokenizers/demo")  # tokenizer.name
    c.stage.export = c.tokenizer.video.checkpoint
    c.stage.max_steps, c.stage.batch_size = 3, 16
    metrics = train_video_tokenizer(c)
    assert set(metrics) >= {"psnr_db", "perplexity", "codes_used"}
    video = build_video_tokenizer(c.tokenizer.video)
    assert video.spec.grid == (4, 4) and video.spec.codebook_size == 64

    c = cfg["audio_codec"]
    assert "checkpoints/tokenizers/audio_codec" in c.stage.export
    c.stage.export = c.tokenizer.audio.checkpoint
    c.stage.max_steps, c.stage.batch_size = 3, 4
    metrics = train_audio_codec(c)
    assert set(metrics) >= {"si_snr_db", "log_mel_l1", "envelope_corr"}
    audio = build_audio_tokenizer(c.tokenizer.audio)
    assert audio.spec.num_codebooks == 2 and audio.spec.frame_rate == 25

    c = cfg["tokenize"]
    summary = tokenize(c)
    reader = ShardReader(shard_dir_for(c))
    assert summary["clips_tokenized"] == len(reader) == 24  # the test world's clips
    clip = reader[reader.ids()[0]]
    assert clip.video.shape[1:] == (4, 4) and clip.audio.shape[0] == 2
    assert clip.reference is not None  # the demo world has one reference PNG per identity
    assert reader.meta["video_weights"] == video.fingerprint != ""


def test_temporal_stride_tokenizer_trains_and_tokenizes_at_half_the_code_rate(cfg, tmp_path):
    c = cfg["video_tokenizer"].copy()
    c.stage.export = str(tmp_path / "vt2")
    c.stage.max_steps, c.stage.batch_size = 3, 8
    c.tokenizer.video.model.temporal_stride = 2
    c.tokenizer.video.model.quantizer = "fsq"
    c.tokenizer.video.model.fsq_levels = [4, 4, 4]
    metrics = train_video_tokenizer(c)
    assert set(metrics) >= {"psnr_db", "ssim", "codes_used"} and 0 < metrics["ssim"] <= 1
    video = build_video_tokenizer({"checkpoint": c.stage.export})
    assert video.spec.temporal_stride == 2 and video.spec.frame_rate == 4.0

    t = cfg["tokenize"].copy()
    t.tokenizer.name = "demo_t2"
    t.tokenizer.video.checkpoint = c.stage.export
    tokenize(t)
    reader = ShardReader(shard_dir_for(t))
    clip = reader[reader.ids()[0]]
    assert reader.meta["video_spec"]["temporal_stride"] == 2
    assert clip.video.shape[0] == -(-clip.meta["num_frames"] // 2)
    assert clip.reference is not None and clip.reference.shape == (4, 4)


def test_a_vq_fine_tune_with_the_encoder_and_codebook_frozen_keeps_every_code(cfg, tmp_path):
    """`stage.freeze=[encoder,quantizer]` from `stage.init_from`: the decoder learns on, every
    code stays (a codebook's EMA would move it if the frozen quantiser ran in training mode);
    without the freeze, the same run moves them."""
    import torch

    runs = {}
    for name, freeze in (("first", None), ("tuned", ["encoder", "quantizer"]), ("all", [])):
        c = cfg["video_tokenizer"].copy()
        c.stage.export = str(tmp_path / name)
        c.stage.max_steps, c.stage.batch_size, c.stage.warmup_steps = 3, 16, 0
        if freeze is not None:
            c.stage.init_from, c.stage.freeze, c.stage.lr = str(tmp_path / "first"), freeze, 0.05
        train_video_tokenizer(c)
        runs[name] = build_video_tokenizer({"checkpoint": c.stage.export})
    size = runs["first"].spec.frame_size
    frames = torch.randint(0, 256, (1, 4, *size, 3), generator=torch.Generator().manual_seed(0))
    codes = {name: tok.encode(frames.to(torch.uint8)) for name, tok in runs.items()}
    assert torch.equal(codes["first"], codes["tuned"])
    assert not torch.equal(codes["first"], codes["all"]), "the control: unfrozen, codes move"
    decoders = [dict(runs[n].decoder.state_dict()) for n in ("first", "tuned")]
    assert any(not torch.equal(decoders[0][k], decoders[1][k]) for k in decoders[0])
