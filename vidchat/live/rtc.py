"""The WebRTC bridge between a browser and a `LiveLoop` (aiortc): transport only.

One `RtcSession` per visitor: one `RTCPeerConnection`, the browser's microphone and camera into
the loop, the loop's voice and face back as one audio and one video track of one stream (the
browser keeps them in sync). Both outgoing tracks are fed from ONE clock task that calls
`loop.tick()` every `tick_seconds` against a monotonic schedule, so the voice and the face come
from the same playback position and nothing drifts; timestamps are counters (audio samples,
video frames in a 90 kHz time base), not wall time.

The loop's model runs in its own thread; on the event loop there are only cheap copies and
conversions (the encoders and decoders run in aiortc's threads). The session closes itself on a
connection failure, when the browser hangs up, when it never connects, and at its time limit;
closing stops every task, the peer connection and the loop within about a second.

ICE: no STUN or TURN server unless given (aiortc would otherwise wait up to 5 s for a public
STUN server). `loopback=True` keeps the media on 127.0.0.1: only a loopback host candidate is
gathered and the offer's other candidates are dropped (a browser on this machine started with
`--allow-loopback-in-peer-connection`; the tests).
"""

from __future__ import annotations

import asyncio
import contextvars
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from vidchat.errors import VidchatError

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000  # RTP's video clock rate
CLOSE_SECONDS = 0.9  # closing waits this long for the tasks, the peer connection and the loop
MAX_LAG_SECONDS = 0.5  # a clock this far behind starts a new schedule instead of bursting
RECV_POLL_SECONDS = 0.5  # a bounded wait for the next frame (then check whether we are closing)
MIN_CAMERA_SIDE = 256  # incoming camera frames are scaled down to about this shorter side


class OfferError(VidchatError):
    """An offer the server cannot answer: its message is the one line the page shows."""


class LiveLoopLike(Protocol):
    """What the bridge needs of `vidchat.live.loop.LiveLoop`."""

    fps: float
    sample_rate: int
    tick_samples: int
    frame_size: tuple[int, ...]

    def push_audio(self, samples: np.ndarray, sample_rate: int) -> None: ...
    def push_frame(self, frame: np.ndarray) -> None: ...
    def tick(self) -> Any: ...  # .audio [tick_samples] float32, .frame [H,W,3] | None, .state
    def close(self) -> None: ...


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server, given to the server's peer connection and to the page."""

    url: str
    username: str | None = None
    credential: str | None = None

    def for_aiortc(self) -> RTCIceServer:
        return RTCIceServer(self.url, self.username, self.credential)

    def for_browser(self) -> dict[str, str]:
        d = {"urls": self.url}
        if self.username is not None:
            d["username"] = self.username
        if self.credential is not None:
            d["credential"] = self.credential
        return d


@dataclass(frozen=True)
class RtcOptions:
    ice_servers: tuple[IceServer, ...] = ()
    loopback: bool = False  # media over 127.0.0.1 only (see the module docstring)
    max_seconds: float = 300.0  # a session ends after this long
    connect_seconds: float = 20.0  # a session that has not connected by then ends
    tick_seconds: float = 0.02  # the output clock's period (the loop's tick)


# ---- loopback ICE --------------------------------------------------------------------------
_LOOPBACK: contextvars.ContextVar[bool] = contextvars.ContextVar("vidchat_loopback", default=False)
_host_addresses: Callable[[bool, bool], list[str]] | None = None


def _install_loopback_hook() -> None:
    """aioice gathers host candidates from every interface but loopback, and aiortc offers no
    way to choose; this wraps aioice's address list once, per task: inside `gather_loopback`
    (the tasks that gather inherit the context) it is 127.0.0.1 only, elsewhere unchanged."""
    global _host_addresses
    import aioice.ice

    if _host_addresses is not None:
        return
    _host_addresses = aioice.ice.get_host_addresses

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if _LOOPBACK.get():
            return ["127.0.0.1"] if use_ipv4 else []
        return _host_addresses(use_ipv4, use_ipv6)  # type: ignore[misc]

    aioice.ice.get_host_addresses = host_addresses


async def set_local_description(pc: RTCPeerConnection, desc: Any, loopback: bool) -> None:
    """`pc.setLocalDescription` (which gathers the candidates), on 127.0.0.1 only if asked."""
    if not loopback:
        await pc.setLocalDescription(desc)
        return
    _install_loopback_hook()
    token = _LOOPBACK.set(True)
    try:
        await pc.setLocalDescription(desc)
    finally:
        _LOOPBACK.reset(token)


def loopback_candidates_only(sdp: str) -> str:
    """The SDP without candidates on other addresses than 127.0.0.1 (so the server never sends
    to them); OfferError if none is left."""
    lines = sdp.splitlines()
    keep = [
        line
        for line in lines
        if not line.startswith("a=candidate:")
        or (len(line.split()) > 4 and line.split()[4] == "127.0.0.1")
    ]
    if not any(line.startswith("a=candidate:") for line in keep):
        raise OfferError(
            "error: the offer has no 127.0.0.1 candidate (this server keeps media on loopback: "
            "start the browser with --allow-loopback-in-peer-connection)"
        )
    return "\r\n".join(keep) + "\r\n"


# ---- conversions ---------------------------------------------------------------------------
def audio_frame(samples: np.ndarray, sample_rate: int, pts: int) -> av.AudioFrame:
    """float32 [S] mono in [-1, 1] -> an s16 AudioFrame stamped `pts` samples. The voice goes
    out as two equal channels: aiortc's Opus encoder is stereo, and libswresample's mono ->
    stereo upmix would lower it by 3 dB."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    both = np.repeat(pcm, 2).reshape(1, -1)  # packed s16: L R L R ...
    frame = av.AudioFrame.from_ndarray(both, format="s16", layout="stereo")
    frame.sample_rate, frame.pts = sample_rate, pts
    frame.time_base = fractions.Fraction(1, sample_rate)
    return frame


def video_frame(image: np.ndarray, index: int, fps: float) -> av.VideoFrame:
    """uint8 [H,W,3] -> an rgb24 VideoFrame stamped at frame `index` on the 90 kHz clock."""
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    frame.pts = int(round(index * VIDEO_CLOCK / fps))
    frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
    return frame


def mono(frame: av.AudioFrame) -> np.ndarray:
    """Any AudioFrame (aiortc's Opus decoder gives s16 stereo) -> float32 mono [S]."""
    x = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    x = x.reshape(channels, -1) if frame.format.is_planar else x.reshape(-1, channels).T
    if np.issubdtype(x.dtype, np.integer):
        scale = float(np.iinfo(x.dtype).max) + 1.0
        return (x.astype(np.float32) / scale).mean(axis=0)
    return x.astype(np.float32).mean(axis=0)


def rgb(frame: av.VideoFrame, min_side: int = MIN_CAMERA_SIDE) -> np.ndarray:
    """A camera frame -> uint8 [H,W,3], scaled down (never up) so its shorter side is about
    `min_side`: the loop crops and resizes it to the model's few dozen pixels anyway."""
    short = min(frame.width, frame.height)
    if short > min_side:
        k = min_side / short
        w, h = max(2, int(frame.width * k) // 2 * 2), max(2, int(frame.height * k) // 2 * 2)
        return frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    return frame.to_ndarray(format="rgb24")


# ---- tracks --------------------------------------------------------------------------------
class ClockTrack(MediaStreamTrack):
    """An outgoing track whose frames the session's clock puts in; aiortc's sender takes them
    with `recv()`. A sender that falls behind loses the oldest frames, never the clock."""

    def __init__(self, kind: str, keep: int) -> None:
        super().__init__()
        self.kind = kind
        self._frames: deque[av.AudioFrame | av.VideoFrame] = deque(maxlen=keep)
        self._ready = asyncio.Event()

    def put(self, frame: av.AudioFrame | av.VideoFrame) -> None:
        self._frames.append(frame)
        self._ready.set()

    async def recv(self) -> av.AudioFrame | av.VideoFrame:
        while self.readyState == "live":
            if self._frames:
                return self._frames.popleft()
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), RECV_POLL_SECONDS)
            except asyncio.TimeoutError:
                pass
        raise MediaStreamError


# ---- the session ---------------------------------------------------------------------------
class RtcSession:
    """One visitor: `answer(offer)` connects the browser to `loop`; `close()` ends it. The
    session owns the loop and closes it. `on_close(session)` runs once, when all is closed;
    `reason` then says why it ended."""

    def __init__(
        self,
        loop: LiveLoopLike,
        options: RtcOptions | None = None,
        on_close: Callable[[RtcSession], None] | None = None,
    ) -> None:
        self.loop, self.options, self.on_close = loop, options or RtcOptions(), on_close
        config = RTCConfiguration(iceServers=[s.for_aiortc() for s in self.options.ice_servers])
        self.pc = RTCPeerConnection(configuration=config)
        self.audio_out = ClockTrack("audio", keep=max(2, int(0.2 / self.options.tick_seconds)))
        self.video_out = ClockTrack("video", keep=4)
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.reason: str | None = None
        self.ticks = self.frames_in = self.audio_in = 0  # counters for tests and logs
        self._tasks: set[asyncio.Task[None]] = set()
        self._closer: asyncio.Task[None] | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    # -- signalling
    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        """The browser's offer -> our answer (candidates included: no trickle). A bad offer is
        an `OfferError` (one line) and closes the session."""
        try:
            if self.options.loopback:
                sdp = loopback_candidates_only(sdp)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            except Exception as exc:  # aiortc's parser raises many kinds on hostile input
                first = (str(exc).splitlines() or [""])[0][:200]
                raise OfferError(
                    f"error: the offer's SDP was refused ({type(exc).__name__}: {first})"
                ) from None
            kinds = {t.kind for t in self.pc.getTransceivers()}
            if not {"audio", "video"} <= kinds:
                raise OfferError("error: the offer needs an audio and a video track")
            self.pc.addTrack(self.audio_out)
            self.pc.addTrack(self.video_out)
            for transport in {t.receiver.transport for t in self.pc.getTransceivers()}:
                transport.on("statechange", lambda t=transport: self._on_dtls(t.state))
            answer = await self.pc.createAnswer()
            await set_local_description(self.pc, answer, self.options.loopback)
        except BaseException:
            await self.close("bad offer")
            raise
        self._spawn(self._expire(self.options.connect_seconds, "could not connect", True))
        return self.pc.localDescription

    # -- events from aiortc
    def _on_track(self, track: MediaStreamTrack) -> None:
        self._spawn(self._consume(track))

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and not self.connected.is_set():
            self.connected.set()
            self._spawn(self._clock())
            self._spawn(self._expire(self.options.max_seconds, "time limit"))
        elif state in ("failed", "closed"):
            self._request_close(f"connection {state}")

    def _on_dtls(self, state: str) -> None:
        if state in ("closed", "failed"):  # the browser hung up (aiortc stays "connected")
            self._request_close("hung up" if state == "closed" else "connection failed")

    # -- tasks
    def _spawn(self, coro: Any) -> None:
        if self._closer is not None:
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A task that failed (a bug in the loop or a conversion) ends the session, logged:
        the page must not stay "connected" to a face that no longer moves."""
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("live session failed", exc_info=exc)
            self._request_close(f"failed: {type(exc).__name__}")

    async def _expire(self, seconds: float, reason: str, unless_connected: bool = False) -> None:
        await asyncio.sleep(seconds)
        if not (unless_connected and self.connected.is_set()):
            self._request_close(reason)

    async def _clock(self) -> None:
        """Tick the loop every `tick_seconds` on a monotonic schedule; late ticks run back to
        back until the schedule is met again, so the output rate never drifts."""
        period, loop = self.options.tick_seconds, self.loop
        start, n, samples, frames = time.monotonic(), 0, 0, 0
        while True:
            tick = loop.tick()
            self.audio_out.put(audio_frame(tick.audio, loop.sample_rate, samples))
            samples += len(tick.audio)
            if tick.frame is not None:
                self.video_out.put(video_frame(tick.frame, frames, loop.fps))
                frames += 1
            n += 1
            self.ticks = n
            wait = start + n * period - time.monotonic()
            if wait < -MAX_LAG_SECONDS:  # a long stall: do not burst seconds of output
                start -= wait
                wait = 0.0
            await asyncio.sleep(max(0.0, wait))

    async def _consume(self, track: MediaStreamTrack) -> None:
        """The browser's microphone or camera into the loop, until the track ends."""
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), RECV_POLL_SECONDS)
            except asyncio.TimeoutError:
                continue
            except MediaStreamError:
                break
            if track.kind == "audio":
                self.loop.push_audio(mono(frame), frame.sample_rate)
                self.audio_in += 1
            else:
                self.loop.push_frame(rgb(frame))
                self.frames_in += 1
        if self.connected.is_set():
            self._request_close("hung up")

    # -- closing
    def _request_close(self, reason: str) -> None:
        if self._closer is None:
            self.reason = reason
            self._closer = asyncio.ensure_future(self._close())

    async def close(self, reason: str = "closed") -> None:
        """End the session (idempotent); returns when it is closed, within about a second."""
        self._request_close(reason)
        assert self._closer is not None
        await asyncio.wait({self._closer}, timeout=2 * CLOSE_SECONDS)

    async def _close(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        self.audio_out.stop()
        self.video_out.stop()
        pc_closed = asyncio.ensure_future(self.pc.close())
        loop_closed = asyncio.get_running_loop().run_in_executor(None, self.loop.close)
        waits = [*tasks, pc_closed, loop_closed]
        done, pending = await asyncio.wait(waits, timeout=CLOSE_SECONDS)
        for part in done:  # retrieve failures while closing, so asyncio does not warn later
            if not part.cancelled() and part.exception() is not None:
                log.warning("live session: closing failed: %r", part.exception())
        for part in pending:
            part.add_done_callback(_retrieve)
        if pending:
            log.warning(
                "live session: %d part(s) still closing after %.1f s", len(pending), CLOSE_SECONDS
            )
        log.info("live session ended: %s", self.reason)
        self.closed.set()
        if self.on_close is not None:
            self.on_close(self)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A done callback that reads a late part's failure, so that asyncio does not warn."""
    if not future.cancelled() and future.exception() is not None:
        log.warning("live session: closing failed late: %r", future.exception())
