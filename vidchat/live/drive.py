"""Drive a `LiveLoop` from a recorded partner clip, as a camera and microphone would, and
record what it sends back: the bench, the tests and `python -m vidchat.live` use it.

Each tick pushes the next `tick_seconds` of the partner's audio, and every camera frame whose
time has come, then ticks the loop. `realtime=True` paces the ticks by the wall clock (timings
then mean what a live person would see); `realtime=False` runs as fast as the responder allows,
each tick waiting until the loop's worker is idle, so the run is the same every time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from vidchat.live.loop import LiveLoop
from vidchat.media import Clip


@dataclass
class Sent:
    """One tick's output: when it was sent and what."""

    wall: float  # time.monotonic()
    out: float  # the output clock, seconds
    state: str
    frame: np.ndarray | None


@dataclass
class Recording:
    ticks: list[Sent] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    started: float = 0.0  # time.monotonic() at the first tick (the partner's time 0)

    @property
    def frames(self) -> np.ndarray:
        """Every frame sent, `[T,H,W,3]`."""
        return np.stack([t.frame for t in self.ticks if t.frame is not None])

    def waveform(self) -> np.ndarray:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.float32)

    def states(self) -> list[str]:
        """The state of each frame sent."""
        return [t.state for t in self.ticks if t.frame is not None]


def drive(
    loop: LiveLoop,
    partner: Clip,
    *,
    tail_seconds: float = 3.0,
    realtime: bool = True,
    settle_timeout: float = 30.0,
    progress: bool = False,
) -> Recording:
    """Feed `partner`, then `tail_seconds` of silence and its last frame, into `loop`."""
    tick_s = loop.cfg.tick_seconds
    n_ticks = int(np.ceil((partner.duration + tail_seconds) / tick_s))
    per_tick = int(round(tick_s * partner.sample_rate))
    rec = Recording(started=time.monotonic())
    next_frame = 0
    for k in tqdm(range(n_ticks), desc="live", unit="tick", disable=not progress):
        if realtime:
            _sleep_until(rec.started + k * tick_s)
        audio = partner.audio[k * per_tick : (k + 1) * per_tick]
        loop.push_audio(np.pad(audio, (0, per_tick - len(audio))), partner.sample_rate)
        while next_frame < len(partner.frames) and next_frame / partner.fps <= (k + 1) * tick_s:
            loop.push_frame(partner.frames[next_frame])
            next_frame += 1
        out = loop.tick()
        rec.ticks.append(Sent(time.monotonic(), k * tick_s, out.state, out.frame))
        rec.audio.append(out.audio)
        if not realtime and not loop.settle(settle_timeout):
            raise TimeoutError(f"the live responder did not finish a chunk in {settle_timeout} s")
    return rec


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)
