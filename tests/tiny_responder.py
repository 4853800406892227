"""Fixtures: a tiny, randomly initialised responder (tokenizers + LM) saved like a real one, and a
partner clip. Registered for every test through `pytest_plugins` in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import EncodecConfig

from vidchat.inference.pipeline import ResponderPipeline
from vidchat.media import write_clip, write_image
from vidchat.model.build import build_layout, build_model
from vidchat.model.checkpoint import export_consolidated
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer

FPS, SR = 8.0, 16000


def tiny_tokenizers(temporal_stride: int = 1) -> tuple[VQVideoTokenizer, EncodecAudioTokenizer]:
    torch.manual_seed(0)
    video = VQVideoTokenizer(
        VQVideoConfig(
            frame_size=32,
            fps=FPS,
            downsample=8,
            channels=[8, 8, 8],
            codebook_size=64,
            code_dim=8,
            temporal_stride=temporal_stride,
        )
    ).eval()
    codec = EncodecConfig(
        sampling_rate=SR,
        upsampling_ratios=[8, 5, 4, 4],
        num_filters=4,
        hidden_size=16,
        num_lstm_layers=1,
        codebook_size=64,
        target_bandwidths=[0.3, 0.6],
        normalize=False,
        chunk_length_s=None,
    )
    audio = EncodecAudioTokenizer.from_config(codec, num_codebooks=2).eval()
    return video, audio


def tiny_pipeline(head: str = "flat", temporal_stride: int = 1) -> ResponderPipeline:
    """`head`: the layout's video and audio head (flat or depth); `temporal_stride`: video frames
    per code frame."""
    video, audio = tiny_tokenizers(temporal_stride)
    layout = build_layout(
        video.spec, audio.spec, {"chunk_seconds": 0.5, "video_head": head, "audio_head": head}
    )
    torch.manual_seed(0)
    model = build_model({"dim": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 1024}, layout)
    reference = np.full((32, 32, 3), 128, np.uint8)
    return ResponderPipeline(model, layout, video, audio, reference=reference)


@pytest.fixture(scope="module")
def pipeline() -> ResponderPipeline:
    return tiny_pipeline()


@pytest.fixture(scope="module")
def saved_responder(tmp_path_factory) -> Path:
    """A consolidated LM checkpoint whose meta points at saved tiny tokenizers; returns its stem."""
    root = tmp_path_factory.mktemp("responder")
    pipe = tiny_pipeline()
    pipe.video_tokenizer.save(root / "video_tokenizer")
    pipe.audio_tokenizer.save(root / "audio_codec")
    write_image(root / "reference.png", pipe.default_reference)
    meta = {
        "tokenizer": {
            "video": {"kind": "vq", "checkpoint": str(root / "video_tokenizer")},
            "audio": {
                "kind": "encodec",
                "checkpoint": str(root / "audio_codec"),
                "num_codebooks": 2,
            },
        },
        "reference_image": "reference.png",
    }
    return export_consolidated(pipe.model, pipe.layout, root / "lm", meta=meta)


@pytest.fixture(scope="module")
def partner_clip(tmp_path_factory) -> Path:
    """A 1.5 s partner clip at another size, fps and sample rate than the tokenizers use."""
    path = tmp_path_factory.mktemp("partner") / "partner.mp4"
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (36, 24, 24, 3), dtype=np.uint8)
    t = np.arange(int(1.5 * 22050)) / 22050
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    write_clip(path, frames, audio, fps=24, sample_rate=22050)
    return path
