"""ASR confidence and no-speech share of each diarised turn: PocketSphinx (offline) or Whisper.

The paper scores clips with Whisper's average log-probability (SFT needs `asr_conf > -1.0`) and
its no-speech probability. PocketSphinx's en-US model ships inside its wheel, so this runs with
no download: `asr_conf` is the mean natural log of the recognised words' posteriors (fillers,
silence and sentence marks left out) and `no_speech` the share of the turn's frames the decoder
spends outside words. Three LibriVox readings scored -0.45, -0.67 and -1.20, three synthetic
demo turns -1.74, -2.67 and -3.41; noise yields no words (`no_speech` 1). `asr_conf` is written under the release's own score name,
so `data=speakervid` applies the paper's SFT threshold to it. `speech.asr=whisper` scores with a
local Whisper checkpoint instead (`vidchat.curate.asr_whisper`), as the paper does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

ASR_RATE = 16000
_FRAMES_PER_SECOND = 100  # PocketSphinx's frame rate
_NOT_WORDS = ("<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "++")


def _decoder() -> Any:
    from pocketsphinx import Decoder

    return Decoder(samprate=ASR_RATE, logfn="/dev/null")


def turn_scores(audio: np.ndarray, decoder: Any | None = None) -> dict[str, float]:
    """16 kHz mono `[S]` audio of one turn -> {"asr_conf", "no_speech"}."""
    decoder = decoder or _decoder()
    decoder.start_utt()
    decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    words = [s for s in decoder.seg() if not s.word.startswith(_NOT_WORDS)]
    frames = max(len(audio) / ASR_RATE * _FRAMES_PER_SECOND, 1.0)
    if not words:
        return {"asr_conf": -10.0, "no_speech": 1.0}
    logs = [float(np.log(max(s.prob, 1e-10))) for s in words]
    in_words = sum(s.end_frame - s.start_frame + 1 for s in words)
    return {
        "asr_conf": round(float(np.mean(logs)), 4),
        "no_speech": round(float(np.clip(1 - in_words / frames, 0, 1)), 4),
    }


Scorer = Callable[[np.ndarray], dict]  # 16 kHz [S] turn -> {"asr_conf", "no_speech"}


def load_scorer(
    kind: str, model: str | None = None, language: str | None = "en", device: str = "cpu"
) -> Scorer | None:
    """The turn scorer `speech.asr` names ("none" -> None), loaded once (a Ray actor holds it);
    Whisper runs on `device`, PocketSphinx on the CPU."""
    if kind == "none":
        return None
    if kind == "whisper":
        from vidchat.curate.asr_whisper import WhisperScorer

        return WhisperScorer(str(model), language, device)
    decoder = _decoder()
    return lambda audio: turn_scores(audio, decoder)


def score_turns(audio: np.ndarray, turns: list[dict], scorer: Scorer) -> None:
    """Add `asr_conf` and `no_speech` to each turn (in place); `audio` is the 16 kHz source."""
    for turn in turns:
        lo, hi = round(turn["start"] * ASR_RATE), round(turn["end"] * ASR_RATE)
        turn.update(scorer(audio[lo:hi]))
