"""Silero VAD: the ONNX file inside the `silero-vad` wheel, run directly with onnxruntime (the
package's own loaders want torchaudio). Speech probability per 32 ms window."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from vidchat.perception.audio import check_audio, resample
from vidchat.perception.weights import package_dir

VAD_RATE = 16000
WINDOW = 512  # samples per decision at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the model also sees


@lru_cache(maxsize=1)
def _session() -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.inter_op_num_threads = opts.intra_op_num_threads = 1
    path = package_dir("silero_vad") / "data" / "silero_vad.onnx"  # type: ignore[operator]
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class StreamingVAD:
    """Silero's speech probability for one 512-sample window at a time, carrying the model's
    state and context from window to window (a live caller feeds the microphone as it comes)."""

    def __init__(self) -> None:
        self.session = _session()
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros((2, 1, 128), np.float32)
        self.context = np.zeros((1, CONTEXT), np.float32)

    def __call__(self, window: np.ndarray) -> float:
        """window `[WINDOW]` float32 at 16 kHz -> P(speech)."""
        x = np.concatenate([self.context, window.astype(np.float32)[None]], axis=1)
        sr = np.array(VAD_RATE, dtype=np.int64)
        out, self.state = self.session.run(None, {"input": x, "state": self.state, "sr": sr})
        self.context = x[:, -CONTEXT:]
        return float(out.reshape(-1)[0])


def speech_probabilities(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """[S] float audio -> [N] speech probability per 32 ms window (16 kHz)."""
    wav = resample(check_audio(audio, sample_rate, "audio"), sample_rate, VAD_RATE)
    wav = np.pad(wav, (0, -len(wav) % WINDOW))
    vad = StreamingVAD()
    return np.asarray([vad(wav[start : start + WINDOW]) for start in range(0, len(wav), WINDOW)])
