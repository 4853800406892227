"""The live loop: a partner's microphone and camera in, the responder's face and voice out, with
turn-taking and barge-in. Transport-free: a WebRTC page (`vidchat.live.rtc`), a script reading
files (`vidchat.live.drive`) or a test feed it the same way.

    push_audio / push_frame ──► PartnerInput (mic clock) ──VAD windows──► TurnDetector
                                        │ partner clip                        │ events
                                        ▼                                     ▼
                     worker thread: responder.listen / responder.answer ◄── tick()
                                        │ frames, audio chunks                │
                                        ▼                                     ▼
                       listening frames, answer queue (≤ queue_chunks) ──► OutputTick

One output clock: the caller calls `tick()` once per `tick_seconds` (20 ms). Each tick returns
that period's audio and, when one is due at the responder's frame rate, a video frame, both
from the same playback position, so voice and face stay in sync whatever the transport does.
When no answer is playing the tick sends listening frames and silence, so no track starves.

Turn end starts an answer (cancelling a listening chunk in flight between two tokens); the answer
plays as its chunks arrive. A barge-in cancels it, flushes its queue and listens again at once
(the next tick sends a listening frame). The model never runs on the caller's thread: `tick()`
only runs the VAD (about 1 ms per 32 ms of audio) and copies buffers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vidchat.live.config import LiveConfig
from vidchat.live.partner import PartnerInput
from vidchat.live.responders import LiveResponder
from vidchat.live.turns import ANSWERING, LISTENING, TurnDetector, TurnEvent
from vidchat.perception.vad import VAD_RATE, WINDOW, StreamingVAD

log = logging.getLogger(__name__)


@dataclass
class OutputTick:
    audio: np.ndarray  # [tick_samples] float32 at the responder's sample rate
    frame: np.ndarray | None  # [H,W,3] uint8 when a video frame is due at this tick
    state: str  # what is being sent: "listening" | "answering"


@dataclass(frozen=True)
class LiveEvent:
    kind: str  # turn_start | turn_end | barge_in | answer_frame | answer_end | error
    wall: float  # time.monotonic() when the loop acted on it
    mic: float  # the microphone clock (seconds of partner audio received)
    out: float  # the output clock: the tick it happened in x tick_seconds
    detail: str = ""


@dataclass
class _Job:
    kind: str  # "listen" | "answer"
    partner: object  # Clip
    turn_start: float | None = None  # an answer's turn onset (mic clock)
    stop: threading.Event = field(default_factory=threading.Event)
    done: bool = False


@dataclass
class _Playing:
    frames: np.ndarray  # [t,H,W,3]
    audio: np.ndarray  # [s]
    pos: int = 0  # samples already sent


class LiveLoop:
    """See the module docstring. Thread-safe: inputs may come from any thread; `tick()` from
    one clock. `close()` stops the worker within `cfg.join_timeout_seconds`."""

    def __init__(self, responder: LiveResponder, cfg: LiveConfig | None = None, vad=None) -> None:
        self.responder, self.cfg = responder, cfg or LiveConfig()
        self.fps, self.sample_rate = float(responder.fps), int(responder.sample_rate)
        self.frame_size = tuple(responder.frame_size)
        self.tick_samples = int(round(self.cfg.tick_seconds * self.sample_rate))
        keep = self.cfg.max_turn_seconds + self.cfg.context_seconds + 2.0
        self.partner = PartnerInput(self.fps, self.frame_size, self.sample_rate, keep)
        self.vad = vad if vad is not None else StreamingVAD()
        self.turns = TurnDetector(self.cfg)
        self.events: list[LiveEvent] = []
        self.underrun_ticks = 0  # ticks where an answer had started but no audio was ready
        self._cond = threading.Condition()
        self._closed = False
        self._next: _Job | None = None  # the job the worker takes next
        self._running: _Job | None = None
        self._queue_full = False  # the answer's worker waits for playback to make room
        self._answer: _Job | None = None  # the answer being made or played
        self._answer_q: deque[_Playing] = deque()
        self._answer_sent = False  # a frame of the current answer has gone out
        self._listen_frames: deque[np.ndarray] = deque()
        self._last_frame = self._listen_frame = np.asarray(responder.still(), np.uint8)
        self._ticks = 0
        self._next_frame_tick = 0.0
        self._out_level: deque[float] = deque(maxlen=max(1, int(0.3 / self.cfg.tick_seconds)))
        self._worker = threading.Thread(target=self._work, name="vidchat-live", daemon=True)
        self._worker.start()

    # ---- input ---------------------------------------------------------------------------
    def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        self.partner.push_audio(samples, sample_rate)

    def push_frame(self, frame: np.ndarray) -> None:
        self.partner.push_frame(frame)

    @property
    def phase(self) -> str:
        return self.turns.phase

    # ---- the clock -----------------------------------------------------------------------
    def tick(self) -> OutputTick:
        """One output period: run the VAD on new input, act on turn events, then send."""
        for end, window in self.partner.windows():
            for event in self.turns.update(end, self._is_speech(window), WINDOW / VAD_RATE):
                self._on_turn(event)
        with self._cond:
            out = self._emit()
            self._schedule_listening()
            self._cond.notify_all()
        self._ticks += 1
        self._out_level.append(float(np.sqrt(np.mean(out.audio**2))) if len(out.audio) else 0.0)
        return out

    def _is_speech(self, window: np.ndarray) -> bool:
        if self.vad(window) < self.cfg.speech_threshold:
            return False
        if self.phase == ANSWERING and self.cfg.echo_gate > 0 and self._out_level:
            level = float(np.sqrt(np.mean(window**2)))
            return level >= self.cfg.echo_gate * max(self._out_level)
        return True

    def _record(self, kind: str, detail: str = "") -> None:
        out = self._ticks * self.cfg.tick_seconds
        self.events.append(LiveEvent(kind, time.monotonic(), self.partner.now, out, detail))

    def _on_turn(self, event: TurnEvent) -> None:
        cfg = self.cfg
        with self._cond:
            if event.kind == "turn_start":
                self._record("turn_start")
            elif event.kind == "turn_end":
                start = max(
                    event.turn_start - cfg.preroll_seconds, event.time - cfg.context_seconds
                )
                self._cancel(self._running)
                clip = self.partner.clip(start, event.time)
                self._answer = self._next = _Job("answer", clip, event.turn_start)
                self._answer_sent = False
                self._listen_frames.clear()  # listening frames from before the turn's end
                self.turns.phase = ANSWERING
                self._record("turn_end", f"speech ended at mic {event.speech_end:.3f}")
            elif event.kind == "barge_in":
                if not self._answer_sent and self._answer is not None:
                    # still thinking: the person went on with the same turn
                    self.turns.turn_start = self._answer.turn_start
                self._stop_answer()
                self._next_frame_tick = self._ticks  # a listening frame goes out now
                self._record("barge_in", f"onset at mic {event.turn_start:.3f}")

    def _cancel(self, job: _Job | None) -> None:
        if job is not None:
            job.stop.set()

    def _stop_answer(self) -> None:
        """Cancel and flush the answer; listen again (call with the lock held)."""
        self._cancel(self._answer)
        if self._next is self._answer:
            self._next = None
        self._answer, self._answer_sent = None, False
        self._answer_q.clear()
        self.turns.phase = LISTENING
        self._last_frame = self._listen_frame

    def _frame_due(self) -> bool:
        if self._ticks + 1e-9 < self._next_frame_tick:
            return False
        self._next_frame_tick += 1.0 / (self.fps * self.cfg.tick_seconds)
        self._next_frame_tick = max(self._next_frame_tick, self._ticks + 1e-9)
        return True

    def _emit(self) -> OutputTick:
        """This tick's audio and (if due) frame (call with the lock held)."""
        due = self._frame_due()
        if self._answer is not None and self._answer_q:
            return self._emit_answer(due)
        if self._answer is not None and (self._answer_sent or self._answer.done):
            if self._answer.done:  # the answer is over (or came out empty): listen again
                self._stop_answer()
                self.turns.reset()
                self._record("answer_end")
                self._log_answer()
            else:
                self.underrun_ticks += 1  # the model is behind: hold the face, send silence
                silence = np.zeros(self.tick_samples, np.float32)
                return OutputTick(silence, self._last_frame if due else None, "answering")
        if due:
            if self._listen_frames:
                self._listen_frame = self._listen_frames.popleft()
            self._last_frame = self._listen_frame
        silence = np.zeros(self.tick_samples, np.float32)
        return OutputTick(silence, self._last_frame if due else None, "listening")

    def _log_answer(self) -> None:
        """One line per answer in the server's log: how soon it started, how long it played,
        and how long it waited for the model (underrun) in all so far."""
        turn_end = next((e for e in reversed(self.events) if e.kind == "turn_end"), None)
        first = next((e for e in reversed(self.events) if e.kind == "answer_frame"), None)
        if turn_end is None or first is None or first.wall < turn_end.wall:
            return
        log.info(
            "live answer: first frame %.0f ms after the turn end, %.1f s played, %.0f ms of "
            "underrun in this session",
            1000 * (first.wall - turn_end.wall),
            self._ticks * self.cfg.tick_seconds - first.out,
            1000 * self.underrun_ticks * self.cfg.tick_seconds,
        )

    def _emit_answer(self, due: bool) -> OutputTick:
        head = self._answer_q[0]
        if not self._answer_sent:
            self._answer_sent = True
            if not due:  # the answer's first frame goes out with its first sound
                due = True
                self._next_frame_tick = self._ticks + 1.0 / (self.fps * self.cfg.tick_seconds)
            self._record("answer_frame")
        if due:
            k = int(head.pos * self.fps / self.sample_rate)
            self._last_frame = head.frames[min(k, len(head.frames) - 1)]
        audio = np.zeros(self.tick_samples, np.float32)
        filled = 0
        while filled < self.tick_samples and self._answer_q:
            head = self._answer_q[0]
            take = min(self.tick_samples - filled, len(head.audio) - head.pos)
            audio[filled : filled + take] = head.audio[head.pos : head.pos + take]
            filled, head.pos = filled + take, head.pos + take
            if head.pos >= len(head.audio):
                self._answer_q.popleft()
        return OutputTick(audio, self._last_frame if due else None, "answering")

    def _schedule_listening(self) -> None:
        """Ask for the next listening chunk when less than one is buffered (lock held)."""
        if not self.cfg.listen or self.phase != LISTENING or self._running or self._next:
            return
        if len(self._listen_frames) >= self.responder.chunk_seconds * self.fps:
            return
        now = self.partner.now
        if now >= self.responder.chunk_seconds:
            start = now - self.cfg.listen_context_seconds
            self._next = _Job("listen", self.partner.clip(start, now))

    # ---- the worker ----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while self._next is None and not self._closed:
                    self._cond.wait(timeout=0.1)
                if self._closed:
                    return
                job, self._next = self._next, None
                self._running = job
            try:
                self._run(job)
            except Exception as exc:  # a failing model must not kill the session
                log.exception("live responder failed")
                with self._cond:
                    self._record("error", f"{type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    job.done, self._running = True, None
                    self._cond.notify_all()

    def _run(self, job: _Job) -> None:
        if job.kind == "listen":
            frames = self.responder.listen(job.partner, job.stop)  # type: ignore[arg-type]
            with self._cond:
                if frames is not None and not job.stop.is_set() and self.phase == LISTENING:
                    self._listen_frames.extend(np.asarray(frames, np.uint8))
            return
        for frames, audio in self.responder.answer(job.partner, job.stop):  # type: ignore[arg-type]
            with self._cond:
                while len(self._answer_q) >= self.cfg.queue_chunks and not self._over(job):
                    self._queue_full = True
                    self._cond.wait(timeout=0.05)
                self._queue_full = False
                if self._over(job):
                    return
                self._answer_q.append(_Playing(np.asarray(frames, np.uint8), audio))

    def _over(self, job: _Job) -> bool:
        return job.stop.is_set() or self._closed or job is not self._answer

    def settle(self, timeout: float) -> bool:
        """Wait until the worker has nothing to do, or waits only for playback to make room in
        the answer queue (deterministic runs); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._next is not None or (self._running is not None and not self._queue_full):
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._cond.wait(timeout=min(left, 0.1))
            return True

    def close(self) -> None:
        """Stop the worker (a chunk in flight stops between two tokens); idempotent."""
        with self._cond:
            self._closed = True
            for job in (self._running, self._next, self._answer):
                self._cancel(job)
            self._cond.notify_all()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout=self.cfg.join_timeout_seconds)

    def __enter__(self) -> LiveLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
