"""Helpers for the WebRTC tests without a browser: an in-process client peer (a synthetic
camera and microphone, over 127.0.0.1 only), a fake live loop, and the live routes served by
uvicorn on a free local port in a thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from vidchat.live.rtc import set_local_description

CLIENT_TONE_HZ = 220.0
CLIENT_COLOUR = (20, 200, 40)  # green: the "camera"
LOOP_TONE_HZ = 440.0
LOOP_COLOUR = (220, 40, 30)  # red: the fake loop's "face"


class ToneTrack(AudioStreamTrack):
    """The client's microphone: a 220 Hz tone, paced in real time (aiortc's 8 kHz frames)."""

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        t = (frame.pts + np.arange(frame.samples)) / frame.sample_rate
        pcm = (0.3 * np.sin(2 * np.pi * CLIENT_TONE_HZ * t) * 32767).astype(np.int16)
        frame.planes[0].update(pcm.tobytes())
        return frame


class ColourTrack(VideoStreamTrack):
    """The client's camera: solid green 320x240 frames at 30 fps."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = np.broadcast_to(np.uint8(CLIENT_COLOUR), (240, 320, 3)).copy()
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


@dataclass
class Tick:
    audio: np.ndarray
    frame: np.ndarray | None
    state: str


class FakeLoop:
    """`LiveLoop`'s surface: a red face at 10 fps and a 440 Hz tone out; records what comes in."""

    fps, sample_rate, tick_samples, frame_size = 10.0, 16000, 320, (64, 64)

    def __init__(self) -> None:
        self.audio: list[tuple[np.ndarray, int]] = []
        self.frames: list[np.ndarray] = []
        self.ticks = 0
        self.closed = False

    def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        self.audio.append((samples, sample_rate))

    def push_frame(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def tick(self) -> Tick:
        t = (self.ticks * self.tick_samples + np.arange(self.tick_samples)) / self.sample_rate
        audio = (0.3 * np.sin(2 * np.pi * LOOP_TONE_HZ * t)).astype(np.float32)
        due = self.ticks % 5 == 0
        self.ticks += 1
        frame = np.broadcast_to(np.uint8(LOOP_COLOUR), (64, 64, 3)) if due else None
        return Tick(audio, frame, "answering")

    def close(self) -> None:
        self.closed = True


@dataclass
class Client:
    """A browser stand-in: sends a tone and green frames, keeps what it receives."""

    pc: RTCPeerConnection
    audio: list[av.AudioFrame] = field(default_factory=list)
    video: list[av.VideoFrame] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    def make(cls) -> Client:
        client = cls(RTCPeerConnection(RTCConfiguration(iceServers=[])))
        client.pc.addTrack(ToneTrack())
        client.pc.addTrack(ColourTrack())
        client.pc.on("track", lambda t: client.tasks.append(asyncio.ensure_future(client._keep(t))))
        return client

    async def _keep(self, track) -> None:
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), 5.0)
            except (MediaStreamError, asyncio.TimeoutError):
                return
            (self.audio if track.kind == "audio" else self.video).append(frame)

    async def offer(self) -> dict[str, str]:
        await set_local_description(self.pc, await self.pc.createOffer(), loopback=True)
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def accept(self, answer: dict[str, str]) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))

    async def close(self) -> None:
        await asyncio.wait_for(self.pc.close(), 5.0)
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5.0)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def received_audio(frames: list[av.AudioFrame]) -> tuple[np.ndarray, int]:
    from vidchat.live.rtc import mono

    return np.concatenate([mono(f) for f in frames]), frames[0].sample_rate


async def wait_until(predicate, timeout: float, step: float = 0.02) -> float:
    """Seconds until `predicate()` held; AssertionError after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1:<free port> in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, "127.0.0.1", self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def post(url: str, body: bytes) -> tuple[int, str]:
    """POST `body` -> (status, text), 4xx and 5xx included (blocking: call it in a thread)."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def post_offer(url: str, offer: dict[str, str]) -> tuple[int, str]:
    return await asyncio.to_thread(post, url, json.dumps(offer).encode())


async def connect_client(offer_url: str, client: Client | None = None) -> Client:
    """A client that offers through the server's HTTP route, is answered and receives video
    and audio (within 10 s)."""
    client = client or Client.make()
    code, text = await post_offer(offer_url, await client.offer())
    assert code == 200, text
    await client.accept(json.loads(text))
    await wait_until(lambda: len(client.video) > 0 and len(client.audio) > 0, 10)
    return client
