"""`LiveConfig`: the live loop's turn-taking and timing settings, checked when it is made."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from vidchat.utils.typed import check


@dataclass(frozen=True)
class LiveConfig:
    """Defaults follow what natural turn-taking needs (see `vidchat.live.loop`): a turn ends
    after 0.7 s of silence (people pause 0.2-0.5 s inside a turn), and the person's voice
    interrupts an answer after 0.2 s of speech (a cough or a click is shorter)."""

    tick_seconds: float = 0.02  # the output clock's period: one 20 ms audio frame (Opus' size)
    speech_threshold: float = 0.5  # Silero's P(speech) above which a 32 ms window is speech
    min_speech_seconds: float = 0.15  # speech that starts a turn (shorter blips are ignored)
    silence_seconds: float = 0.7  # silence after speech that ends the person's turn
    max_turn_seconds: float = 20.0  # a turn this long ends even without a pause
    preroll_seconds: float = 0.3  # kept before the detected onset (VAD onsets come late)
    barge_in_seconds: float = 0.2  # the person's speech during an answer that interrupts it
    echo_gate: float = 0.5  # during an answer, the mic counts as speech only at this share of
    # our own output level (our voice echoing back must not interrupt us); 0 = off
    context_seconds: float = 6.0  # the partner's last seconds that prompt an answer
    listen_context_seconds: float = 3.0  # ... and a listening chunk (one prefill per chunk)
    answer_max_seconds: float = 8.0  # an answer ends here if the model has not ended it
    queue_chunks: int = 2  # answer chunks generated ahead of playback
    listen: bool = True  # generate listening frames while the person speaks (else hold a frame)
    join_timeout_seconds: float = 1.0  # close() waits this long for the worker thread

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                check(f"live.{f.name}", math.isfinite(value) and value >= 0, ">= 0", value)
        positive = (
            "tick_seconds",
            "silence_seconds",
            "context_seconds",
            "listen_context_seconds",
            "answer_max_seconds",
        )
        for name in positive:
            check(f"live.{name}", getattr(self, name) > 0, "> 0", getattr(self, name))
        check(
            "live.speech_threshold",
            0 < self.speech_threshold < 1,
            "in (0, 1)",
            self.speech_threshold,
        )
        check("live.queue_chunks", self.queue_chunks >= 1, ">= 1", self.queue_chunks)
        check(
            "live.max_turn_seconds",
            self.max_turn_seconds > self.silence_seconds,
            "> live.silence_seconds",
            self.max_turn_seconds,
        )
