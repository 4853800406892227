"""Whisper turn scores from a local checkpoint (a tiny random Whisper the test saves)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

EOT, SOT, EN, TRANSCRIBE, NO_SPEECH, NO_TIMESTAMPS = 50, 51, 52, 53, 54, 55


def save_tiny_whisper(folder, no_speech_logit: float | None = None) -> str:
    """A 1-layer Whisper with a 64-token vocabulary and Whisper's special-token layout; with
    `no_speech_logit`, every decoder position predicts the no-speech token with that logit."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=24,
        decoder_start_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        bos_token_id=EOT,
    )
    model = WhisperForConditionalGeneration(config).eval()
    if no_speech_logit is not None:
        with torch.no_grad():  # hidden state = the final norm's bias b at every position
            norm, embed = model.model.decoder.layer_norm, model.model.decoder.embed_tokens
            norm.weight.zero_()
            norm.bias.normal_()
            embed.weight.mul_(0.01)
            embed.weight[NO_SPEECH] = no_speech_logit * norm.bias / norm.bias.square().sum()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=EOT,
        no_timestamps_token_id=NO_TIMESTAMPS,
        lang_to_id={"<|en|>": EN},
        task_to_id={"transcribe": TRANSCRIBE},
        suppress_tokens=[SOT, EN, TRANSCRIBE],
        begin_suppress_tokens=[EOT],
    )
    model.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return str(folder)


def speech_like(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * 16000)) / 16000
    return (
        0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))
        + 0.01 * rng.standard_normal(len(t))
    ).astype(np.float32)


def test_whisper_scores_equal_a_full_forward_of_the_decoded_tokens(tmp_path):
    """The cached greedy loop's log-probabilities and no-speech probability equal one
    teacher-forced forward pass over prompt + decoded tokens, and obey the suppressions."""
    from vidchat.curate.asr_whisper import WhisperScorer

    scorer = WhisperScorer(save_tiny_whisper(tmp_path / "whisper"))
    assert scorer.prompt == [SOT, EN, TRANSCRIBE, NO_TIMESTAMPS]
    audio = speech_like(3.0)
    tokens, logprobs, no_speech = scorer.decode(audio)
    assert tokens and not {SOT, EN, TRANSCRIBE} & set(tokens) and tokens[0] != EOT
    mel = scorer.features(audio, sampling_rate=16000, return_tensors="pt").input_features
    seq = torch.tensor([scorer.prompt + tokens])
    with torch.no_grad():
        logits = scorer.model(input_features=mel, decoder_input_ids=seq).logits[0].float()
    logits[:, [SOT, EN, TRANSCRIBE]] = -float("inf")
    logits[len(scorer.prompt) - 1, EOT] = -float("inf")
    full = logits.log_softmax(-1)[len(scorer.prompt) - 1 : -1]  # predicts each decoded token
    assert full.argmax(-1).tolist() == tokens
    np.testing.assert_allclose(
        logprobs, full.gather(1, seq[0, len(scorer.prompt) :, None])[:, 0], atol=1e-4
    )
    expected = scorer.model(input_features=mel, decoder_input_ids=seq).logits[0, 0].softmax(-1)
    assert no_speech == pytest.approx(float(expected[NO_SPEECH]), abs=1e-5)
    scores = scorer(audio)
    assert scores["asr_conf"] == pytest.approx(float(np.mean(logprobs)), abs=1e-4)


def test_whisper_no_speech_and_long_turns(tmp_path):
    """A model sure of silence scores no_speech ~1; a 45 s turn is scored in two windows."""
    from vidchat.curate.asr import load_scorer, score_turns

    silent = load_scorer("whisper", save_tiny_whisper(tmp_path / "silent", no_speech_logit=20.0))
    assert silent(speech_like(2.0))["no_speech"] > 0.99
    scorer = load_scorer("whisper", save_tiny_whisper(tmp_path / "whisper"))
    audio = speech_like(45.0)
    first, rest = scorer(audio[: 30 * 16000]), scorer(audio[30 * 16000 :])
    turns = [{"start": 0.0, "end": 45.0}]
    score_turns(audio, turns, scorer)
    expected = (2 * first["no_speech"] + rest["no_speech"]) / 3
    assert turns[0]["no_speech"] == pytest.approx(expected, abs=1e-3)
