"""Video VQ tokenizer: shapes, round trip, straight-through gradient, codebook usage, checkpoints."""

import pytest
import torch

from vidchat.errors import ConfigError, VidchatError
from vidchat.tokenizers import build_video_tokenizer
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer
from vidchat.training.tokenizer_modules import VideoTokenizerModule

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


def test_fsq_codes_round_trip():
    from vidchat.tokenizers.quantizers import FiniteScalarQuantizer

    fsq = FiniteScalarQuantizer([8, 5, 5, 5])
    z = torch.randn(500, 4) * 3
    q = fsq(z)
    assert torch.equal(fsq.encode(z), q.codes)
    assert torch.allclose(fsq.decode(q.codes), q.quantized)
    assert q.codes.max() < 1000 and q.codes.min() >= 0


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
