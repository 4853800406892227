"""The live page's HTTP side: `GET /live` (the page), `GET /live/config` (its ICE servers) and
`POST /live/offer` (the browser's WebRTC offer -> our answer), served next to the upload page.

One live session at a time: the model answers one person live, so a second visitor gets 409 and
the line `busy: ...`, which the page shows. Every refused offer (not JSON, fields missing, over
64 KB, SDP aiortc refuses) is a 4xx with one line, never a traceback; anything unexpected is
logged here and is one `error:` line for the page (500), and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from vidchat.live.rtc import IceServer, LiveLoopLike, OfferError, RtcOptions, RtcSession

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("live.html")
MAX_OFFER_BYTES = 64 * 1024
READ_SECONDS = 10.0  # a client gets this long to send its offer
START_SECONDS = 30.0  # making a session's loop (the VAD, the responder's still) takes this at most
BUSY = "busy: someone is in a live chat with this model right now; try again when it ends"


class _Refused(OfferError):
    """An offer refused before a session is made, with its HTTP status."""

    def __init__(self, line: str, status: int = 400) -> None:
        super().__init__(line)
        self.status = status


def _line(text: str, status: int) -> Response:
    return PlainTextResponse(text.splitlines()[0] + "\n", status_code=status)


async def read_offer(request: Request) -> tuple[str, str]:
    """The request's `{sdp, type}` JSON -> (sdp, type), or `_Refused` with the one line."""
    too_big = _Refused(f"error: the offer is over {MAX_OFFER_BYTES // 1024} KB", 413)
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > MAX_OFFER_BYTES:
        raise too_big

    async def body() -> bytes:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_OFFER_BYTES:
                raise too_big
        return bytes(data)

    try:
        raw = await asyncio.wait_for(body(), READ_SECONDS)
    except asyncio.TimeoutError:
        raise _Refused("error: the offer took too long to send", 408) from None
    try:
        offer = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _Refused('error: the offer must be JSON: {"sdp": "...", "type": "offer"}') from None
    if not isinstance(offer, dict) or not isinstance(offer.get("sdp"), str):
        raise _Refused('error: the offer must be JSON with a string "sdp" and "type": "offer"')
    if offer.get("type") != "offer":
        raise _Refused(f'error: "type" must be "offer", got {str(offer.get("type"))[:40]!r}')
    return offer["sdp"], "offer"


class LiveService:
    """The live routes over one `make_loop` (a new `LiveLoop` per session) and one session slot.

    `routes()` go into the server's app before Gradio's; `lifespan` closes the session when the
    server stops; `shutdown()` does so from another thread."""

    def __init__(self, make_loop: Callable[[], LiveLoopLike], options: RtcOptions) -> None:
        self.make_loop, self.options = make_loop, options
        self.session: RtcSession | None = None
        self.sessions_started = 0
        self._lock = asyncio.Lock()
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._page = PAGE.read_text(encoding="utf-8")

    def routes(self) -> list[Route]:
        return [
            Route("/live", self.page, methods=["GET"]),
            Route("/live/config", self.config, methods=["GET"]),
            Route("/live/offer", self.offer, methods=["POST"]),
        ]

    def app(self) -> Starlette:
        """The live routes alone (tests, or a server without the upload page)."""
        return Starlette(routes=self.routes(), lifespan=self.lifespan)

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        yield
        await self.close_all()

    async def page(self, request: Request) -> Response:
        return HTMLResponse(self._page, headers={"Cache-Control": "no-store"})

    async def config(self, request: Request) -> Response:
        servers = [s.for_browser() for s in self.options.ice_servers]
        return JSONResponse({"iceServers": servers, "maxSeconds": self.options.max_seconds})

    async def offer(self, request: Request) -> Response:
        self._event_loop = asyncio.get_running_loop()
        try:
            sdp, kind = await read_offer(request)
        except _Refused as exc:
            return _line(str(exc), exc.status)
        async with self._lock:
            if self.session is not None:
                return _line(BUSY, 409)
            try:
                loop = await self._new_loop()
            except Exception:
                log.exception("live: could not start a session")
                return _line("error: the server could not start a live session", 500)
            session = RtcSession(loop, self.options, on_close=self._ended)
            self.session = session
            self.sessions_started += 1
        try:
            answer = await session.answer(sdp, kind)
        except OfferError as exc:
            return _line(str(exc), 400)
        except Exception:
            log.exception("live: could not answer an offer")
            return _line("error: the server could not answer the offer", 500)
        return JSONResponse({"sdp": answer.sdp, "type": answer.type})

    async def _new_loop(self) -> LiveLoopLike:
        """`make_loop()` off the event loop (it loads the VAD the first time); a loop that comes
        after the wait has given up is closed when it comes."""
        future = asyncio.get_running_loop().run_in_executor(None, self.make_loop)
        try:
            return await asyncio.wait_for(asyncio.shield(future), START_SECONDS)
        except asyncio.TimeoutError:
            future.add_done_callback(lambda f: f.exception() or f.result().close())
            raise

    def _ended(self, session: RtcSession) -> None:
        if self.session is session:
            self.session = None

    async def close_all(self) -> None:
        if self.session is not None:
            await self.session.close("server stopped")

    def shutdown(self, timeout: float = 2.0) -> None:
        """Close the session from another thread (the server's loop runs elsewhere)."""
        loop = self._event_loop
        if self.session is None or loop is None or loop.is_closed() or not loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.close_all(), loop).result(timeout)
        except Exception:  # a loop stopping under us, or a slow close: nothing left to wait for
            log.warning("live: the session did not close within %.1f s", timeout)


def rtc_options(cfg: Any) -> RtcOptions:
    """A `DemoConfig`'s live options (the username and password go with the TURN URLs)."""
    servers = tuple(
        IceServer(url, cfg.ice_username, cfg.ice_credential)
        if url.startswith(("turn:", "turns:"))
        else IceServer(url)
        for url in cfg.ice_servers
    )
    return RtcOptions(servers, cfg.ice_loopback, cfg.live_max_seconds)


def live_service(cfg: Any, pipe: Any) -> LiveService:
    """The live page for a `DemoConfig`: `pipe` behind `ModelResponder`, or the signal stub."""
    from vidchat.live.config import LiveConfig
    from vidchat.live.loop import LiveLoop
    from vidchat.live.responders import ModelResponder, SignalResponder

    responder = SignalResponder() if cfg.live_responder == "signal" else ModelResponder(pipe)
    settings = LiveConfig(silence_seconds=cfg.live_silence_seconds)
    return LiveService(lambda: LiveLoop(responder, settings), rtc_options(cfg))
