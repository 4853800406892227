"""The live loop without a transport: turn end, barge-in, echo, cancellation, disconnect and
leaks, driven from scripted audio (deterministic runs: each tick waits for the worker)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vidchat.data.demo_world.identities import make_identities
from vidchat.data.demo_world.speech import synthesize_turn
from vidchat.errors import ConfigError
from vidchat.live.config import LiveConfig
from vidchat.live.drive import Recording, drive
from vidchat.live.loop import LiveLoop
from vidchat.live.responders import ANSWER_COLOUR, LISTEN_COLOUR, SignalResponder
from vidchat.media import Clip

pytestmark = pytest.mark.timeout(120)

SR, FPS = 16000, 8.0
TICK = LiveConfig().tick_seconds


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Demo speech (Silero finds it speech from ~0.2 s in to ~0.2 s before the end)."""
    rng = np.random.default_rng(seed)
    return synthesize_turn(rng, make_identities(4)[2], "happy", seconds, SR)[0]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * SR)), np.float32)


def partner(*pieces: np.ndarray) -> Clip:
    audio = np.concatenate(pieces).astype(np.float32)
    n = int(len(audio) / SR * FPS)
    frames = np.full((n, 48, 80, 3), 90, np.uint8)  # a camera of another size and shape
    return Clip(frames, audio, FPS, SR, n / FPS)


def colours(rec: Recording) -> str:
    """One letter per frame sent: L (listening blue), A (answering red)."""
    out = []
    for frame in rec.frames:
        pixel = tuple(int(v) for v in frame[0, 0])
        out.append({LISTEN_COLOUR: "L", ANSWER_COLOUR: "A"}.get(pixel, "?"))
    return "".join(out)


def first(loop: LiveLoop, kind: str, after: float = -1.0):
    return next(e for e in loop.events if e.kind == kind and e.mic > after)


def test_turn_end_answers_then_listens_again():
    loop = LiveLoop(SignalResponder(answer_seconds=1.5), LiveConfig())
    rec = drive(loop, partner(speech(2.0), silence(4.0)), realtime=False)
    loop.close()
    letters = colours(rec)
    assert set(letters) == {"L", "A"}, letters
    start, end = letters.index("A"), letters.rindex("A")
    assert letters[start : end + 1] == "A" * (end - start + 1)  # one answer, never interrupted
    assert (end - start + 1) / FPS == pytest.approx(1.5, abs=0.2)
    turn_end, answer = first(loop, "turn_end"), first(loop, "answer_frame")
    # the turn ends silence_seconds after the speech, and the answer's first frame goes out at once
    speech_end = float(turn_end.detail.rsplit(" ", 1)[1])
    assert turn_end.mic - speech_end == pytest.approx(0.7, abs=0.05)
    assert answer.mic - turn_end.mic <= 2 * TICK
    assert start / FPS == pytest.approx(answer.mic, abs=1 / FPS)
    # the tone plays while the face is red, and silence while it is blue
    wave = rec.waveform()
    per_tick = [np.abs(wave[i : i + 320]).max() for i in range(0, len(wave), 320)]
    states = [t.state for t in rec.ticks]
    assert all(p > 0.2 for p, s in zip(per_tick, states) if s == "answering")
    assert all(p == 0 for p, s in zip(per_tick, states) if s == "listening")
    assert first(loop, "answer_end")


def test_barge_in_stops_the_answer_at_the_onset_and_flushes_it():
    loop = LiveLoop(SignalResponder(answer_seconds=4.0), LiveConfig())
    # speech, a pause that ends the turn, then speech 1 s into the 4 s answer
    rec = drive(
        loop, partner(speech(2.0), silence(1.8), speech(2.0, seed=1), silence(3.0)), realtime=False
    )
    loop.close()
    barge = first(loop, "barge_in")
    onset = float(barge.detail.rsplit(" ", 1)[1])
    assert 3.8 <= onset <= 4.3  # the second speech starts at 3.8 s (+ its lead-in)
    assert barge.mic - onset <= LiveConfig().barge_in_seconds + 0.07  # decided at the onset
    i = next(k for k, t in enumerate(rec.ticks) if t.out >= barge.out - 1e-9)
    after = rec.ticks[i : i + 3]
    assert after[0].state == "listening" and after[0].frame is not None  # a listening frame now
    assert not np.any(np.concatenate(rec.audio[i:])[: int(0.5 * SR)])  # queue flushed: silence
    # the interrupting speech is the next turn, answered in its turn
    assert first(loop, "turn_end", after=barge.mic).mic > barge.mic
    assert colours(rec).count("A") < 4.0 * FPS + 3.0 * FPS  # the first answer did not finish


class EchoingVoice(SignalResponder):
    """Answers in a voice Silero hears as speech (so its echo could interrupt it)."""

    def answer(self, partner, stop):
        voice = speech(self.answer_seconds, seed=7) * 1.5
        n = int(self.chunk_seconds * SR)
        for k, (frames, _) in enumerate(super().answer(partner, stop)):
            yield frames, voice[k * n : (k + 1) * n]


@pytest.mark.parametrize("gate, interrupted", [(0.0, True), (0.5, False)])
def test_own_voice_echo_does_not_interrupt(gate, interrupted):
    """The microphone hears our answer at 0.3 of its level: the echo gate keeps it from
    counting as the person's speech (with the gate off it does interrupt: the test can fail)."""
    loop = LiveLoop(EchoingVoice(answer_seconds=3.0), LiveConfig(echo_gate=gate))
    mic = np.concatenate([speech(2.0), silence(5.0)])
    per_tick, last_out = int(TICK * SR), np.zeros(int(TICK * SR), np.float32)
    for k in range(len(mic) // per_tick):
        loop.push_audio(mic[k * per_tick : (k + 1) * per_tick] + 0.3 * last_out, SR)
        last_out = loop.tick().audio
        assert loop.settle(30)
    loop.close()
    kinds = [e.kind for e in loop.events]
    assert ("barge_in" in kinds) == interrupted, kinds


def test_speech_while_thinking_continues_the_same_turn():
    """The person speaks again before the first answer frame: one turn, from the first onset."""
    slow = SignalResponder(compute_seconds=1.0)
    loop = LiveLoop(slow, LiveConfig(listen=False))
    rec = drive(
        loop, partner(speech(1.5), silence(0.75), speech(1.5, 1), silence(3)), realtime=True
    )
    loop.close()
    ends = [e for e in loop.events if e.kind == "turn_end"]
    assert "barge_in" in [e.kind for e in loop.events]
    assert len([e for e in loop.events if e.kind == "answer_frame"]) == 1
    assert colours(rec).count("A") > 0
    assert ends[-1].mic > 3.5


def test_close_mid_answer_frees_the_worker_within_a_second():
    loop = LiveLoop(SignalResponder(answer_seconds=10, compute_seconds=0.2), LiveConfig())
    drive(loop, partner(speech(1.5), silence(1.5)), tail_seconds=0.0, realtime=True)
    assert loop.phase == "answering"
    started = time.monotonic()
    loop.close()
    assert time.monotonic() - started < 1.0
    assert not loop._worker.is_alive()
    loop.close()  # twice is fine


def test_connect_disconnect_cycles_leak_no_threads():
    before = threading.active_count()
    for _ in range(20):
        loop = LiveLoop(SignalResponder(compute_seconds=0.05), LiveConfig())
        for _ in range(5):
            loop.push_audio(speech(0.1), SR)
            loop.tick()
        loop.close()
    assert threading.active_count() <= before


class Broken(SignalResponder):
    def answer(self, partner, stop):
        raise RuntimeError("out of memory")
        yield


def test_a_failing_responder_is_reported_and_the_loop_listens_on():
    loop = LiveLoop(Broken(), LiveConfig())
    rec = drive(loop, partner(speech(2.0), silence(2.0)), realtime=False)
    loop.close()
    error = first(loop, "error")
    assert "out of memory" in error.detail
    assert rec.ticks[-1].state == "listening" and loop.phase == "listening"


def test_bad_settings_are_one_error():
    with pytest.raises(ConfigError, match="live.silence_seconds must be > 0"):
        LiveConfig(silence_seconds=0.0)
    with pytest.raises(ConfigError, match="live.max_turn_seconds"):
        LiveConfig(max_turn_seconds=0.5)
