"""The demo tokenizers in checkpoints/demo/ load and still reconstruct as well as recorded.

Made by `python train.py stage=video_tokenizer` and `python train.py stage=audio_codec`, which
record held-out quality on the demo world in `<stem>.metrics.json`; here the same metrics are
measured again on the (smaller, same-generator) demo world of the test session.
"""

import json

import numpy as np
from omegaconf import OmegaConf

from tests.conftest import REPO_ROOT
from vidchat.tokenizers import build_audio_tokenizer, build_video_tokenizer
from vidchat.training.tokenizers.data import decode_records
from vidchat.training.tokenizers.evaluate import evaluate_audio_codec, evaluate_video_tokenizer

DEMO = REPO_ROOT / "checkpoints" / "demo"
DEMO64 = REPO_ROOT / "vidchat" / "assets" / "demo64"


def demo_tokenizer_cfg():
    cfg = OmegaConf.load(REPO_ROOT / "configs" / "tokenizer" / "demo.yaml")
    cfg.video.checkpoint = str(DEMO / "video_tokenizer")
    cfg.audio.checkpoint = str(DEMO / "audio_codec")
    return cfg


def recorded(name: str, folder=DEMO) -> dict:
    return json.loads((folder / f"{name}.metrics.json").read_text())["held_out"]


def held_out_clips(demo_world, **read):
    records = demo_world.manifest.records_for("val") + demo_world.manifest.records_for("test")
    return decode_records(records, **read)


def test_demo_checkpoints_fit_the_size_budget():
    files = [*DEMO.glob("video_tokenizer.*"), *DEMO.glob("audio_codec.*")]
    assert len(files) == 6  # .safetensors + .json + .metrics.json each
    total = sum(p.stat().st_size for p in files)
    assert total <= 8 * 2**20, f"demo tokenizers take {total / 2**20:.1f} MB"
    everything = sum(p.stat().st_size for p in DEMO.iterdir() if p.is_file())
    assert everything <= 25 * 2**20, f"demo checkpoints take {everything / 2**20:.1f} MB"


def test_demo_video_tokenizer_reproduces_recorded_quality(demo_world):
    tok = build_video_tokenizer(demo_tokenizer_cfg().video)
    assert tok.spec.grid == (4, 4) and tok.spec.frame_size == (32, 32)
    rec = recorded("video_tokenizer")
    assert rec["psnr_db"] >= 28.0 and rec["codes_used"] >= 0.5  # the targets it was trained for
    clips = held_out_clips(demo_world, fps=tok.spec.frame_rate, size=32)
    frames = np.concatenate([c.frames for c in clips])
    now = evaluate_video_tokenizer(tok, frames)
    assert now["psnr_db"] >= rec["psnr_db"] - 1.5, (now, rec)


def test_demo_audio_codec_reproduces_recorded_quality(demo_world):
    codec = build_audio_tokenizer(demo_tokenizer_cfg().audio)
    assert codec.spec.frame_rate == 25 and codec.spec.num_codebooks == 2
    rec = recorded("audio_codec")
    clips = held_out_clips(demo_world, fps=8, size=8, sample_rate=codec.spec.sample_rate)
    now = evaluate_audio_codec(codec, [c.audio for c in clips])
    # syllables stay audible: the loudness envelope follows the original
    assert now["envelope_corr"] >= max(0.8, rec["envelope_corr"] - 0.05), (now, rec)
    assert now["log_mel_l1"] <= rec["log_mel_l1"] + 0.3, (now, rec)
    assert now["si_snr_db"] >= rec["si_snr_db"] - 3.0, (now, rec)


def test_demo64_experiment_loads_the_shipped_tokenizers(demo_world):
    """`experiment=demo64` finds its 64 px video tokenizer in the package and the 32 px demo's
    audio codec; the video tokenizer still reconstructs demo faces at 64 px as recorded."""
    from vidchat.cli import compose

    cfg = compose("train", ["experiment=demo64", "stage=pretrain"])
    tok = build_video_tokenizer(cfg.tokenizer.video)
    assert tok.spec.grid == (8, 8) and tok.spec.frame_size == (64, 64)
    assert build_audio_tokenizer(cfg.tokenizer.audio).spec.num_codebooks == 2
    rec = recorded("video_tokenizer", DEMO64)
    clips = held_out_clips(demo_world, fps=tok.spec.frame_rate, size=64)
    now = evaluate_video_tokenizer(tok, np.concatenate([c.frames for c in clips]))
    assert now["psnr_db"] >= rec["psnr_db"] - 1.5, (now, rec)
    shipped = [*DEMO.iterdir(), *DEMO64.iterdir()]
    assert sum(p.stat().st_size for p in shipped if p.is_file()) <= 25 * 2**20
