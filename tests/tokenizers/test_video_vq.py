"""Video VQ tokenizer: shapes, round trip, straight-through gradient, codebook usage, checkpoints."""

import pytest
import torch

from vidchat.errors import ConfigError, VidchatError
from vidchat.tokenizers import build_video_tokenizer
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer
from vidchat.training.tokenizers.modules import VideoTokenizerModule

TINY = dict(frame_size=16, downsample=4, channels=[8, 16], codebook_size=64, code_dim=8)


@pytest.mark.parametrize("quantizer", ["vq", "fsq"])
def test_encode_decode_shapes(quantizer):
    tok = VQVideoTokenizer(VQVideoConfig(**TINY, quantizer=quantizer, fsq_levels=[4, 4, 4])).eval()
    frames = torch.randint(0, 256, (2, 3, 16, 16, 3), dtype=torch.uint8)  # [B,T,H,W,3]
    codes = tok.encode(frames)
    assert codes.shape == (2, 3, 4, 4) and codes.dtype == torch.long
    assert tok.spec.grid == (4, 4) and tok.spec.num_codebooks == 1
    assert int(codes.max()) < tok.spec.codebook_size and int(codes.min()) >= 0
    out = tok.decode(codes)
    assert out.shape == frames.shape and out.dtype == torch.uint8
    # decode is a pure function of the codes: re-encoding the codes' decoding is stable in shape
    assert torch.equal(tok.decode(codes), out)


def test_wrong_frame_size_is_a_user_error():
    tok = VQVideoTokenizer(VQVideoConfig(**TINY)).eval()
    with pytest.raises(VidchatError, match="16x16"):
        tok.encode(torch.zeros(1, 2, 32, 32, 3, dtype=torch.uint8))


@pytest.mark.parametrize("quantizer", ["vq", "fsq"])
def test_straight_through_gradient_reaches_encoder(quantizer):
    tok = VQVideoTokenizer(VQVideoConfig(**TINY, quantizer=quantizer, fsq_levels=[4, 4, 4])).train()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    recon, q = tok(x)
    ((recon - x).pow(2).mean()).backward()  # reconstruction only: gradient must pass the quantiser
    first = tok.encoder[0].weight.grad
    assert first is not None and first.abs().sum() > 0


@pytest.mark.parametrize(
    ("kind", "options", "size"),
    [
        ("fsq", {"levels": [8, 5, 5, 5]}, 1000),
        ("fsq", {"levels": [8, 8, 8, 5, 5, 5]}, 64000),
        ("lfq", {}, 1024),
    ],
)
def test_library_quantizer_codes_round_trip(kind, options, size):
    from vidchat.tokenizers.quantizers import build_quantizer

    q_mod = build_quantizer(kind, size, 0, **options)
    assert q_mod.codebook_size == size
    z = torch.randn(4000, q_mod.dim) * 3
    q = q_mod(z)
    assert torch.equal(q_mod.encode(z), q.codes)
    assert torch.allclose(q_mod.decode(q.codes), q.quantized, atol=1e-6)
    assert q.codes.max() < size and q.codes.min() >= 0
    # the large FSQ codebook is really used: thousands of distinct codes from 4k random latents
    assert q.codes.unique().numel() > min(size, 4000) * 0.3


def test_stride_16_and_the_64k_fsq_codebook():
    cfg = VQVideoConfig(
        frame_size=64,
        downsample=16,
        channels=[8, 8, 16, 16],
        quantizer="fsq",
        fsq_levels=[8, 8, 8, 5, 5, 5],
    )
    tok = VQVideoTokenizer(cfg).eval()
    assert tok.spec.grid == (4, 4) and tok.spec.codebook_size == 64000
    assert tok.spec.code_dtype == torch.zeros(0, dtype=torch.uint16).numpy().dtype
    codes = tok.encode(torch.randint(0, 256, (1, 2, 64, 64, 3), dtype=torch.uint8))
    assert codes.shape == (1, 2, 4, 4)


def _temporal(k: int, quantizer: str = "fsq") -> VQVideoTokenizer:
    torch.manual_seed(0)
    cfg = VQVideoConfig(**TINY, quantizer=quantizer, fsq_levels=[4, 4, 4], temporal_stride=k)
    return VQVideoTokenizer(cfg).eval()


@pytest.mark.parametrize("k", [2, 4])
def test_temporal_stride_groups_frames_causally(k):
    tok = _temporal(k)
    assert tok.spec.frame_rate == tok.cfg.fps / k and tok.spec.pixel_frame_rate == tok.cfg.fps
    frames = torch.randint(0, 256, (1, 3 * k, 16, 16, 3), dtype=torch.uint8)
    codes = tok.encode(frames)
    assert codes.shape == (1, 3, 4, 4)
    assert tok.decode(codes).shape == frames.shape
    # causal in groups: changing the last group leaves the earlier code frames alone ...
    later = frames.clone()
    later[:, -k:] = 255 - later[:, -k:]
    assert torch.equal(tok.encode(later)[:, :2], codes[:, :2])
    assert not torch.equal(tok.encode(later)[:, 2], codes[:, 2])
    # ... so a stream encoded chunk by chunk equals the whole clip at once
    chunks = [tok.encode(frames[:, i : i + k]) for i in range(0, 3 * k, k)]
    assert torch.equal(torch.cat(chunks, dim=1), codes)
    # a single image is one code frame: k copies of itself
    image = frames[:, :1]
    assert torch.equal(tok.encode(image), tok.encode(image.expand(-1, k, -1, -1, -1)))


def test_temporal_stride_codec_round_trip_keeps_the_frame_count(tmp_path):
    from vidchat.tokenizers.codec import decode_frames, encode_frames

    tok = _temporal(2, "vq")
    tok.save(tmp_path / "vt", fp16=False)
    loaded = build_video_tokenizer({"checkpoint": str(tmp_path / "vt")})
    assert loaded.spec == tok.spec and loaded.spec.to_dict()["temporal_stride"] == 2
    frames = torch.randint(0, 256, (7, 16, 16, 3), dtype=torch.uint8).numpy()
    codes = encode_frames(loaded, frames)
    assert codes.shape[0] == 4 and torch.equal(codes, encode_frames(tok, frames))
    assert decode_frames(loaded, codes).shape == (8, 16, 16, 3)


def test_bad_temporal_stride_is_a_config_error():
    with pytest.raises(ValueError, match="temporal_stride"):
        VQVideoConfig(**TINY, temporal_stride=3)


def test_codebook_usage_does_not_collapse():
    """A short training run on varied images keeps most codes alive (k-means init + restarts)."""
    torch.manual_seed(0)
    tok = VQVideoTokenizer(VQVideoConfig(**TINY))
    opt = torch.optim.Adam(tok.parameters(), lr=2e-3)
    data = torch.randint(0, 256, (256, 16, 16, 3), dtype=torch.uint8)
    for _ in range(30):
        x = VideoTokenizerModule.to_images(data[torch.randint(0, 256, (32,))])
        recon, q = tok(x)
        loss = (recon - x).abs().mean() + q.loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    tok.eval()
    codes = tok.encode(data[None])
    used = codes.unique().numel() / tok.spec.codebook_size
    assert used > 0.5, f"only {used:.0%} of the codebook used"


def test_checkpoint_round_trip(tmp_path):
    tok = VQVideoTokenizer(VQVideoConfig(**TINY)).eval()
    tok.save(tmp_path / "vt", fp16=False)
    loaded = build_video_tokenizer({"checkpoint": str(tmp_path / "vt")})
    frames = torch.randint(0, 256, (1, 2, 16, 16, 3), dtype=torch.uint8)
    assert torch.equal(loaded.encode(frames), tok.encode(frames))
    assert loaded.spec == tok.spec


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(VidchatError, match="nope.safetensors"):
        build_video_tokenizer({"checkpoint": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="tokenizer.video.checkpoint"):
        build_video_tokenizer({"checkpoint": None})
