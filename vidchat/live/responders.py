"""What the live loop asks of a responder, the shipped model behind that, and a signal stub.

A live responder does two things, each cancellable through a `threading.Event`:
- `listen(partner)`: one chunk of frames of the responder listening to the partner so far;
- `answer(partner)`: the answer to a finished turn, chunk by chunk (frames and voice).

`SignalResponder` shows its state instead of a face (solid blue and silence while listening,
solid red and a 440 Hz tone while answering), so a page, a network path or a test can check
turn-taking end to end without a model: `python -m vidchat.webapp --live-responder signal`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from threading import Event
from typing import Protocol

import numpy as np

from vidchat.inference.pipeline import ResponderPipeline
from vidchat.media import Clip
from vidchat.model.generate import SamplingConfig

AnswerChunk = tuple[np.ndarray, np.ndarray]  # frames [t,H,W,3] uint8, audio [s] float32


class LiveResponder(Protocol):
    fps: float
    sample_rate: int
    frame_size: tuple[int, int]  # (H, W)
    chunk_seconds: float

    def still(self) -> np.ndarray:
        """The face `[H,W,3]` shown before the first listening frame."""
        ...

    def listen(self, partner: Clip, stop: Event) -> np.ndarray | None:
        """One chunk of listening frames `[t,H,W,3]`, or None if `stop` was set."""
        ...

    def answer(self, partner: Clip, stop: Event) -> Iterator[AnswerChunk]:
        """The answer's chunks as they are made; ends early once `stop` is set."""
        ...


class ModelResponder:
    """The trained responder (`ResponderPipeline`) on one reference face.

    Listening runs the model on the partner so far for one chunk, its voice fixed to the codec's
    silence: the listening branch trains exactly that (partner speaking, listener silent), so
    the face reacts to the partner's voice and face as they come, with a listener's mouth.
    The cost is one prefill of the partner's last `context_seconds` and one chunk per chunk of
    listening, about the cost of answering (see the README's "Live chat")."""

    def __init__(
        self,
        pipe: ResponderPipeline,
        reference: np.ndarray | None = None,
        sampling: SamplingConfig | None = None,
        answer_max_seconds: float = 8.0,
    ) -> None:
        self.pipe = pipe
        self.reference = pipe.reference_image(reference)
        self.sampling = sampling or SamplingConfig()
        self._listened = 0
        self.answer_max_seconds = answer_max_seconds
        self.fps, self.sample_rate = pipe.fps, pipe.sample_rate
        self.frame_size = pipe.frame_size
        self.chunk_seconds = float(pipe.layout.cfg.chunk_seconds)

    def still(self) -> np.ndarray:
        return self.reference

    def listen(self, partner: Clip, stop: Event) -> np.ndarray | None:
        self._listened += 1  # each chunk its own seed: one seed would draw the same chunk again
        seed = self.sampling.seed
        sampling = replace(self.sampling, seed=None if seed is None else seed + self._listened)
        chunks = self.pipe.stream(
            partner,
            self.reference,
            max_seconds=self.chunk_seconds,
            sampling=sampling,
            stop=stop,
            listening=True,
        )
        chunk = next(iter(chunks), None)
        return None if chunk is None or stop.is_set() else chunk.frames

    def answer(self, partner: Clip, stop: Event) -> Iterator[AnswerChunk]:
        for chunk in self.pipe.stream(
            partner,
            self.reference,
            max_seconds=self.answer_max_seconds,
            sampling=self.sampling,
            stop=stop,
        ):
            yield chunk.frames, chunk.audio


LISTEN_COLOUR = (30, 60, 220)  # blue
ANSWER_COLOUR = (220, 40, 30)  # red
TONE_HZ = 440.0


class SignalResponder:
    """Blue silence while listening, a red 440 Hz tone while answering (see the module
    docstring). `answer_seconds` long; `compute_seconds` of sleep per chunk stands in for a
    model's compute."""

    def __init__(
        self,
        fps: float = 8.0,
        sample_rate: int = 16000,
        frame_size: tuple[int, int] = (64, 64),
        chunk_seconds: float = 0.5,
        answer_seconds: float = 3.0,
        compute_seconds: float = 0.0,
        amplitude: float = 0.3,
    ) -> None:
        self.fps, self.sample_rate, self.frame_size = fps, sample_rate, frame_size
        self.chunk_seconds, self.answer_seconds = chunk_seconds, answer_seconds
        self.compute_seconds, self.amplitude = compute_seconds, amplitude

    def _frames(self, colour: tuple[int, int, int]) -> np.ndarray:
        n = max(1, int(round(self.chunk_seconds * self.fps)))
        return np.broadcast_to(np.uint8(colour), (n, *self.frame_size, 3)).copy()

    def still(self) -> np.ndarray:
        return self._frames(LISTEN_COLOUR)[0]

    def _compute(self, stop: Event) -> bool:
        """Sleep `compute_seconds` unless stopped; True if stopped."""
        return stop.wait(self.compute_seconds) if self.compute_seconds else stop.is_set()

    def listen(self, partner: Clip, stop: Event) -> np.ndarray | None:
        return None if self._compute(stop) else self._frames(LISTEN_COLOUR)

    def answer(self, partner: Clip, stop: Event) -> Iterator[AnswerChunk]:
        n = int(round(self.chunk_seconds * self.sample_rate))
        for k in range(max(1, int(round(self.answer_seconds / self.chunk_seconds)))):
            if self._compute(stop):
                return
            t = (k * n + np.arange(n)) / self.sample_rate
            tone = self.amplitude * np.sin(2 * np.pi * TONE_HZ * t)
            yield self._frames(ANSWER_COLOUR), tone.astype(np.float32)
