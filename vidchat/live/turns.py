"""Turn-taking from voice activity: when the person's turn starts and ends, and when their voice
interrupts the responder's answer.

The detector sees one decision per VAD window (32 ms at 16 kHz), stamped with the microphone's
own clock (samples received / rate), so its timings do not depend on when the windows are
processed. It knows two phases, set by the loop:

- `listening`: speech of `min_speech_seconds` starts a turn (at the onset of that speech); then
  `silence_seconds` of silence, or `max_turn_seconds` in all, ends it (`turn_end`).
- `answering`: speech of `barge_in_seconds` is a `barge_in`. Counting from the onset, not from
  the end of the interrupting speech, is what people expect of a barge-in (fastrtc cuts only
  when the interruption ends, and its users ask for this). The loop gates the windows against
  its own output level before they get here, so the answer's echo is not speech.

A barge-in also starts the person's next turn at its onset: what they said while interrupting is
part of the turn the responder answers next.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidchat.live.config import LiveConfig

LISTENING, ANSWERING = "listening", "answering"
GAP_SECONDS = 0.1  # a pause this short (between syllables) does not break a run of speech


@dataclass(frozen=True)
class TurnEvent:
    kind: str  # "turn_start" | "turn_end" | "barge_in"
    time: float  # the microphone clock, seconds: when the event was decided
    turn_start: float  # the onset of the turn's first speech, seconds
    speech_end: float | None = None  # turn_end only: where the last speech stopped


class TurnDetector:
    """Feed `update(end_time, is_speech)` once per VAD window; it returns the events it
    decided (usually none). `phase` is `listening` or `answering` (the loop sets it)."""

    def __init__(self, cfg: LiveConfig) -> None:
        self.cfg = cfg
        self.phase = LISTENING
        self.turn_start: float | None = None  # onset of the turn in progress
        self._run_start: float | None = None  # onset of the current run of speech windows
        self._last_speech: float | None = None  # end of the last speech window

    def reset(self) -> None:
        """End the turn in progress (its answer is over); a run of speech going on now can
        still start the next turn."""
        self.turn_start = None

    def update(self, end_time: float, is_speech: bool, window: float) -> list[TurnEvent]:
        """One VAD window `[end_time - window, end_time)` -> the events it completes."""
        cfg = self.cfg
        if is_speech:
            start = end_time - window
            if self._last_speech is None or start - self._last_speech > GAP_SECONDS:
                self._run_start = start
            self._last_speech = end_time
        speaking = self._last_speech is not None and end_time - self._last_speech <= GAP_SECONDS
        run = end_time - self._run_start if speaking and self._run_start is not None else 0.0
        if self.phase == ANSWERING:
            if run >= cfg.barge_in_seconds:
                self.turn_start = self._run_start
                return [TurnEvent("barge_in", end_time, self._run_start)]
            return []
        events: list[TurnEvent] = []
        if self.turn_start is None and run >= cfg.min_speech_seconds:
            self.turn_start = self._run_start
            events.append(TurnEvent("turn_start", end_time, self.turn_start))
        if self.turn_start is not None and self._last_speech is not None:
            silent = end_time - self._last_speech
            if silent >= cfg.silence_seconds or end_time - self.turn_start >= cfg.max_turn_seconds:
                events.append(TurnEvent("turn_end", end_time, self.turn_start, self._last_speech))
        return events
