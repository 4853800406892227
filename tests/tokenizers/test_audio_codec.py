"""Audio codec: EnCodec behind AudioTokenizer; local-dir loading equals transformers directly."""

import pytest
import torch
from transformers import EncodecConfig, EncodecModel

from vidchat.errors import ConfigError, VidchatError
from vidchat.tokenizers import build_audio_tokenizer
from vidchat.tokenizers.audio_codec import EncodecAudioTokenizer


def tiny_config(**kw) -> EncodecConfig:
    """16 kHz, hop 64 (250 code frames/s), up to 2 codebooks of 64 codes."""
    base = dict(
        sampling_rate=16000,
        upsampling_ratios=[4, 4, 4],
        num_filters=4,
        hidden_size=16,
        num_lstm_layers=1,
        codebook_size=64,
        target_bandwidths=[1.5, 3.0],  # 250 frames/s * 6 bits = 1.5 kbps per codebook -> K = 1, 2
    )
    base.update(kw)
    return EncodecConfig(**base)


def random_model(seed: int = 0) -> EncodecModel:
    torch.manual_seed(seed)
    model = EncodecModel(tiny_config()).eval()
    for layer in model.quantizer.layers:  # transformers initialises codebooks to zeros
        layer.codebook.embed.normal_()
    return model


def test_local_dir_equals_transformers_direct(tmp_path):
    model = random_model()
    model.save_pretrained(tmp_path / "encodec")
    tok = build_audio_tokenizer(
        {"kind": "encodec", "pretrained_dir": str(tmp_path / "encodec"), "num_codebooks": 2}
    )
    audio = torch.randn(2, 1600) * 0.3  # [B,S]
    codes = tok.encode(audio)
    direct = model.encode(audio[:, None], bandwidth=3.0).audio_codes[0]
    assert codes.shape == (2, 2, 25)
    assert torch.equal(codes, direct)
    assert len(codes.unique()) > 1  # codes are informative, not all zero
    wave = tok.decode(codes)
    direct_wave = model.decode(direct[None], [None]).audio_values[:, 0]
    torch.testing.assert_close(wave, direct_wave)
    assert (
        tok.spec.frame_rate == 250 and tok.spec.sample_rate == 16000 and tok.spec.hop_length == 64
    )


def test_round_trip_shapes_and_own_checkpoint(tmp_path):
    tok = EncodecAudioTokenizer(random_model(), num_codebooks=1).eval()
    audio = torch.randn(3, 1000) * 0.3
    codes = tok.encode(audio)
    assert codes.shape == (3, 1, 16)  # ceil(1000 / 64)
    assert tok.decode(codes).shape == (3, 16 * 64)
    tok.save(tmp_path / "ac", fp16=False)
    loaded = build_audio_tokenizer({"checkpoint": str(tmp_path / "ac")})
    assert torch.equal(loaded.encode(audio), codes)
    assert loaded.spec == tok.spec


def test_bad_settings_are_user_errors(tmp_path):
    with pytest.raises(VidchatError, match="config.json"):
        build_audio_tokenizer({"pretrained_dir": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="num_codebooks=3"):
        EncodecAudioTokenizer(random_model(), num_codebooks=3)
    with pytest.raises(ConfigError, match="pretrained_dir"):
        build_audio_tokenizer({"kind": "encodec"})


def test_training_quantizer_updates_codebooks_and_passes_gradient():
    codec = EncodecAudioTokenizer(EncodecModel(tiny_config()), num_codebooks=2).train()
    latents = torch.randn(2, 16, 40, requires_grad=True)  # [B,D,Ta]
    quantized, codes, commit = codec.quantize_latents(latents)
    assert codes.shape == (2, 2, 40) and quantized.shape == latents.shape
    book = codec.model.quantizer.layers[0].codebook.embed
    assert book.abs().sum() > 0  # k-means initialised from the batch
    quantized.sum().backward()
    torch.testing.assert_close(latents.grad, torch.ones_like(latents))  # straight-through


def test_training_init_keeps_the_input_in_the_latents():
    """With transformers' default init the biases swamp the input; ours must not."""
    torch.manual_seed(0)
    codec = EncodecAudioTokenizer.from_config(tiny_config(), num_codebooks=1)
    t = torch.arange(4000) / 16000
    audio = torch.stack([0.1 * torch.sin(2 * torch.pi * f * t) for f in (120, 250, 500, 900)])
    latents = codec.model.encoder(audio[:, None]).detach()  # [B,D,Ta]
    input_share = latents.std(0).mean() / latents.std()
    assert input_share > 0.3, f"latents barely depend on the input ({input_share:.3f})"
