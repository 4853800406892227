"""Whisper's confidence scores of a turn, from a local Hugging Face checkpoint (`speech.asr=whisper`).

The paper keeps SFT clips by Whisper's average log-probability (`asr_conf > -1.0`) and its
no-speech probability. They are computed here as openai-whisper computes them, for greedy
decoding without timestamps:

- `asr_conf`: the mean log-probability of the decoded tokens, the end-of-text token included
  (openai's `avg_logprob`, which Hugging Face's `_retrieve_avg_logprobs` reproduces);
- `no_speech`: the probability of the no-speech token (`<|nocaptions|>` / `<|nospeech|>`, the id
  just before `<|notimestamps|>`) at the start-of-transcript position.

The greedy loop is written here rather than taken from `generate()` because `generate()` exposes
the no-speech probability only inside its long-form fallback logic; this loop yields both scores
from one pass, applies the checkpoint's `suppress_tokens` and `begin_suppress_tokens` as Whisper
does, and needs nothing of the checkpoint beyond its model, feature extractor and generation
config (no tokenizer: only scores are kept). Turns longer than Whisper's 30 s window are scored
per window and averaged, weighted by duration. Weights load from `speech.asr_model` only;
nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidchat.errors import VidchatError

WINDOW_SECONDS = 30.0  # Whisper's input window


class WhisperScorer:
    """A local Whisper checkpoint -> {"asr_conf", "no_speech"} per 16 kHz turn."""

    def __init__(
        self,
        model_dir: str,
        language: str | None = "en",
        device: str = "cpu",
        max_new_tokens: int = 224,
    ) -> None:
        from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

        if not Path(model_dir, "config.json").is_file():
            raise VidchatError(f"curate.speech.asr_model: no Whisper checkpoint in {model_dir!r}")
        self.features = WhisperFeatureExtractor.from_pretrained(model_dir)
        self.model = WhisperForConditionalGeneration.from_pretrained(model_dir).to(device).eval()
        self.device = device
        gen = self.model.generation_config
        self.prompt = _prompt(gen, language)
        self.eot = int(gen.eos_token_id if gen.eos_token_id is not None else gen.pad_token_id)
        self.no_speech_id = int(gen.no_timestamps_token_id) - 1
        self.suppress = list(getattr(gen, "suppress_tokens", None) or [])
        self.begin_suppress = list(getattr(gen, "begin_suppress_tokens", None) or [])
        limit = self.model.config.max_target_positions - len(self.prompt)
        self.max_new_tokens = max(1, min(max_new_tokens, limit))

    def __call__(self, audio: np.ndarray) -> dict[str, float]:
        """16 kHz mono `[S]` audio of one turn -> {"asr_conf", "no_speech"}."""
        size = round(WINDOW_SECONDS * self.features.sampling_rate)
        windows = [audio[i : i + size] for i in range(0, len(audio), size)]
        if not windows:
            return {"asr_conf": -10.0, "no_speech": 1.0}  # as PocketSphinx scores no words
        scores = []  # (average token log-probability, no-speech probability) per window
        for window in windows:
            _, logprobs, no_speech = self.decode(window)
            scores.append((float(np.mean(logprobs)), no_speech))
        weights = [len(w) for w in windows]
        conf, no_speech = np.average(np.asarray(scores), axis=0, weights=weights)
        return {"asr_conf": round(float(conf), 4), "no_speech": round(float(no_speech), 4)}

    def decode(self, audio: np.ndarray) -> tuple[list[int], list[float], float]:
        """Greedy decoding of one <= 30 s window -> (tokens, their log-probabilities, no-speech
        probability); the tokens end with end-of-text unless `max_new_tokens` ran out."""
        import torch

        feats = self.features(
            np.clip(audio, -1, 1).astype(np.float32),
            sampling_rate=self.features.sampling_rate,
            return_tensors="pt",
        )
        mel = feats.input_features.to(self.device, self.model.dtype)  # [1,n_mels,3000]
        tokens: list[int] = []
        logprobs: list[float] = []
        with torch.inference_mode():
            encoded = self.model.model.encoder(mel).last_hidden_state  # [1,1500,D]
            out = self._step(torch.tensor([self.prompt], device=self.device), encoded, None)
            no_speech = out.logits[0, 0].float().softmax(-1)[self.no_speech_id]  # at SOT
            while len(tokens) < self.max_new_tokens:
                logits = out.logits[0, -1].float()  # [V]
                logits[self.suppress] = -float("inf")
                if not tokens:
                    logits[self.begin_suppress] = -float("inf")
                step = logits.log_softmax(-1)
                tokens.append(int(step.argmax()))
                logprobs.append(float(step[tokens[-1]]))
                if tokens[-1] == self.eot:
                    break
                out = self._step(
                    torch.tensor([tokens[-1:]], device=self.device), encoded, out.past_key_values
                )
        return tokens, logprobs, float(no_speech)

    def _step(self, tokens: Any, encoded: Any, past: Any) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        return self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
            decoder_input_ids=tokens,
            past_key_values=past,
            use_cache=True,
        )


def _prompt(gen: Any, language: str | None) -> list[int]:
    """<|startoftranscript|> [<|lang|>] [<|transcribe|>] <|notimestamps|> from the generation config."""
    prompt = [int(gen.decoder_start_token_id)]
    lang_to_id = getattr(gen, "lang_to_id", None) or {}
    if language and lang_to_id:
        key = language if language.startswith("<|") else f"<|{language}|>"
        if key not in lang_to_id:
            raise VidchatError(f"curate.speech.asr_language: the Whisper model has no {key}")
        prompt.append(int(lang_to_id[key]))
    task_to_id = getattr(gen, "task_to_id", None) or {}
    if "transcribe" in task_to_id:
        prompt.append(int(task_to_id["transcribe"]))
    return prompt + [int(gen.no_timestamps_token_id)]
