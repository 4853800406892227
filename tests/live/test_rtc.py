"""The WebRTC bridge without a browser: two in-process aiortc peers over 127.0.0.1 (no STUN),
the server side bridging to a loop; and the live routes over HTTP (bad offers, a busy slot,
connect/disconnect cycles that leave nothing behind)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("aiortc")

from tests.live.rtc_peers import (  # noqa: E402
    CLIENT_COLOUR,
    CLIENT_TONE_HZ,
    LOOP_COLOUR,
    LOOP_TONE_HZ,
    Client,
    FakeLoop,
    ServerThread,
    connect_client,
    dominant_hz,
    post,
    post_offer,
    received_audio,
    wait_until,
)
from vidchat.live.rtc import RtcOptions, RtcSession, loopback_candidates_only  # noqa: E402

pytestmark = pytest.mark.timeout(60)
LOOPBACK = RtcOptions(loopback=True)
CANDIDATE = "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n"


async def _connect(loop, options: RtcOptions = LOOPBACK) -> tuple[Client, RtcSession]:
    client, session = Client.make(), RtcSession(loop, options)
    answer = await session.answer((await client.offer())["sdp"], "offer")
    await client.accept({"sdp": answer.sdp, "type": answer.type})
    await asyncio.wait_for(session.connected.wait(), 10)
    return client, session


@pytest.mark.timeout(60)
def test_media_flows_both_ways_on_one_clock():
    async def run() -> None:
        loop = FakeLoop()
        client, session = await _connect(loop)
        try:
            await wait_until(lambda: len(client.video) >= 15 and len(client.audio) >= 100, 15)
        finally:
            await client.close()
        await asyncio.wait_for(session.closed.wait(), 1.0)  # the hang-up closes it at once
        assert loop.closed and not session._tasks

        # out: the loop's tone and red face, timestamps from counters
        audio, rate = received_audio(client.audio[10:])
        assert dominant_hz(audio, rate) == pytest.approx(LOOP_TONE_HZ, abs=5)
        assert np.sqrt(np.mean(audio**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.08)  # full level
        face = client.video[-1].to_ndarray(format="rgb24").reshape(-1, 3).mean(0)
        assert np.abs(face - LOOP_COLOUR).max() < 20, face
        steps = np.diff([f.pts for f in client.audio[10:]])
        assert (steps == steps[0]).all()  # no gaps, no bursts
        # in: the client's tone (mono) and green camera, scaled down
        heard = np.concatenate([x for x, _ in loop.audio[10:]])
        assert dominant_hz(heard, loop.audio[0][1]) == pytest.approx(CLIENT_TONE_HZ, abs=5)
        seen = loop.frames[-1]
        assert seen.shape == (240, 320, 3)
        assert np.abs(seen.reshape(-1, 3).mean(0) - CLIENT_COLOUR).max() < 20
        # the clock ran at 50 ticks a second (a fake loop's 10 fps: a frame every 5 ticks)
        assert session.ticks == pytest.approx(5 * len(client.video), abs=15)

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_the_clock_keeps_its_rate_without_drift():
    async def run() -> None:
        loop = FakeLoop()
        client, session = await _connect(loop)
        try:
            first, started = session.ticks, time.monotonic()
            await asyncio.sleep(2.0)
            # one tick per 20 ms of the time that passed, however late the sleep woke
            expected = (time.monotonic() - started) / 0.02
            assert session.ticks - first == pytest.approx(expected, abs=4)
        finally:
            await client.close()
            await session.close()

    asyncio.run(run())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["server close", "time limit", "never connects"])
def test_a_session_ends_within_a_second_and_frees_everything(how):
    async def run() -> None:
        loop = FakeLoop()
        if how == "never connects":
            session = RtcSession(loop, RtcOptions(loopback=True, connect_seconds=0.5))
            client = Client.make()
            await session.answer((await client.offer())["sdp"], "offer")  # never accepted
            await asyncio.wait_for(session.closed.wait(), 1.5)
            assert session.reason == "could not connect"
        else:
            limit = 0.5 if how == "time limit" else 60.0
            client, session = await _connect(loop, RtcOptions(loopback=True, max_seconds=limit))
            if how == "server close":
                await wait_until(lambda: len(client.video) > 0, 10)
                await asyncio.wait_for(session.close("test"), 1.0)
            await asyncio.wait_for(session.closed.wait(), limit + 1.0)
            assert session.reason == ("test" if how == "server close" else "time limit")
            # the browser side sees the hang-up: its incoming tracks end
            await wait_until(lambda: all(t.done() for t in client.tasks), 2)
        await client.close()
        assert loop.closed and not session._tasks
        assert session.pc.connectionState == "closed"

    asyncio.run(run())


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "sdp, message",
    [
        ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "SDP was refused .ValueError: ICE"),
        ("v=0\r\nm=audio x y z\r\n", "the offer's SDP was refused"),
        ("v=0\r\nthis is not sdp\r\n", "needs an audio and a video track"),
        ("", "needs an audio and a video track"),
    ],
)
def test_an_sdp_aiortc_refuses_is_one_line_and_closes_the_session(sdp, message):
    from vidchat.live.rtc import OfferError

    async def run() -> None:
        loop = FakeLoop()
        session = RtcSession(loop, RtcOptions())
        with pytest.raises(OfferError, match=message) as caught:
            await session.answer(sdp, "offer")
        assert "\n" not in str(caught.value) and str(caught.value).startswith("error: ")
        assert session.closed.is_set() and loop.closed

    asyncio.run(run())


def test_loopback_keeps_only_127_0_0_1_candidates():
    from vidchat.live.rtc import OfferError

    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host\r\n"
        "a=candidate:2 1 udp 2122260223 127.0.0.1 50001 typ host\r\n"
        "a=candidate:3 1 udp 2122260223 abcd.local 50002 typ host\r\n"
    )
    kept = loopback_candidates_only(sdp)
    assert "127.0.0.1 50001" in kept and "192.0.2.2" not in kept and ".local" not in kept
    with pytest.raises(OfferError, match="no 127.0.0.1 candidate"):
        loopback_candidates_only(sdp.replace("127.0.0.1", "192.0.2.3"))


# ---- over HTTP -----------------------------------------------------------------------------
@pytest.fixture
def live_server():
    from vidchat.live.config import LiveConfig
    from vidchat.live.loop import LiveLoop
    from vidchat.live.responders import SignalResponder
    from vidchat.webapp.live import LiveService

    service = LiveService(lambda: LiveLoop(SignalResponder(), LiveConfig()), LOOPBACK)
    with ServerThread(service.app()) as server:
        server.service = service
        yield server


@pytest.mark.timeout(60)
def test_bad_offers_get_one_line_and_a_4xx_and_the_server_keeps_serving(live_server):
    offer_url = live_server.url("/live/offer")
    cases = {
        b"not json at all": (400, "must be JSON"),
        b"[1, 2]": (400, 'a string "sdp"'),
        json.dumps({"type": "offer"}).encode(): (400, 'a string "sdp"'),
        json.dumps({"sdp": "v=0", "type": "answer"}).encode(): (400, '"type" must be "offer"'),
        json.dumps({"sdp": "x" * 70000, "type": "offer"}).encode(): (413, "over 64 KB"),
        json.dumps({"sdp": "v=0\r\nm=audio x\r\n" + CANDIDATE, "type": "offer"}).encode(): (
            400,
            "refused",
        ),
        json.dumps({"sdp": "\x00\xff" * 100 + "\r\n" + CANDIDATE, "type": "offer"}).encode(): (
            400,
            "needs an audio and a video track",
        ),
        json.dumps({"sdp": "v=0\r\n", "type": "offer"}).encode(): (400, "no 127.0.0.1 candidate"),
    }
    for body, (status, words) in cases.items():
        code, text = post(offer_url, body)
        assert (code, text.count("\n")) == (status, 1), (body[:40], code, text)
        assert text.startswith("error: ") and words in text and "Traceback" not in text
    assert live_server.service.session is None  # each refused offer freed the slot

    async def good() -> None:
        await (await connect_client(offer_url)).close()

    asyncio.run(good())


@pytest.mark.timeout(60)
def test_a_second_visitor_is_told_busy_until_the_first_leaves(live_server):
    offer_url = live_server.url("/live/offer")

    async def run() -> None:
        first, second = await connect_client(offer_url), Client.make()
        code, text = await post_offer(offer_url, await second.offer())
        assert code == 409 and text.startswith("busy: ") and text.count("\n") == 1, text
        await first.close()
        await wait_until(lambda: live_server.service.session is None, 1.0)
        await (await connect_client(offer_url, second)).close()

    asyncio.run(run())


@pytest.mark.timeout(120)
def test_twenty_sessions_leave_no_threads_tasks_or_files(live_server):
    offer_url = live_server.url("/live/offer")

    def server_tasks() -> int:
        loop = live_server.service._event_loop

        async def count() -> int:
            return len(asyncio.all_tasks())

        return asyncio.run_coroutine_threadsafe(count(), loop).result(5)

    async def cycle() -> None:
        await (await connect_client(offer_url)).close()
        await wait_until(lambda: live_server.service.session is None, 1.0)

    def usage() -> tuple[int, int, int]:
        # asyncio's default executor keeps up to min(32, cores + 4) idle threads, grown on
        # demand under load: a pool, not a leak; every other thread counts
        threads = [t for t in threading.enumerate() if not t.name.startswith("asyncio_")]
        return len(threads), server_tasks(), len(os.listdir("/proc/self/fd"))

    async def run() -> None:
        for _ in range(3):  # warm up: the VAD's session, codecs
            await cycle()
        await asyncio.sleep(0.5)
        before = usage()
        for _ in range(20):
            await cycle()

        def settled() -> bool:  # what a closed session leaves is gone within 3 s
            now = usage()
            return now[0] <= before[0] and now[1] <= before[1] and now[2] <= before[2] + 2

        try:
            await wait_until(settled, 3.0)  # a socket or two may wait in TIME_WAIT
        except AssertionError:
            raise AssertionError(f"before {before}, after {usage()}") from None
        assert live_server.service.sessions_started == 23

    asyncio.run(run())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["shutdown", "server stops"])
def test_stopping_the_server_ends_the_session(live_server, how):
    async def run() -> None:
        client = await connect_client(live_server.url("/live/offer"))
        session = live_server.service.session
        if how == "shutdown":  # what `python -m vidchat.webapp` does on Ctrl-C or SIGTERM
            await asyncio.to_thread(live_server.service.shutdown)
        else:  # the server's lifespan ends it (Gradio's close() stops the server so)
            await asyncio.to_thread(live_server.stop)
        assert session.closed.is_set() and session.reason == "server stopped"
        await wait_until(lambda: all(t.done() for t in client.tasks), 2)
        await client.close()

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_the_page_and_its_ice_config_are_served(live_server):
    import urllib.request

    page = urllib.request.urlopen(live_server.url("/live"), timeout=10).read().decode()
    assert 'id="start"' in page and 'id="remote"' in page and "processing" in page
    assert "http" not in page.replace('href="./"', "")  # no CDN, nothing fetched elsewhere
    config = json.loads(urllib.request.urlopen(live_server.url("/live/config"), timeout=10).read())
    assert config["iceServers"] == []


def test_live_flags_are_checked_and_reach_the_page_and_the_peer():
    from vidchat.errors import ConfigError
    from vidchat.webapp.__main__ import parse_args
    from vidchat.webapp.live import live_service, rtc_options

    cfg = parse_args(
        "--live-responder signal --live-max-seconds 30 --ice-server stun:stun.example.org:3478 "
        "--ice-server turn:turn.example.org:3478 --ice-username u --ice-credential p".split()
    )
    stun, turn = rtc_options(cfg).ice_servers
    assert stun.for_browser() == {"urls": "stun:stun.example.org:3478"}
    assert turn.for_browser() == {
        "urls": "turn:turn.example.org:3478",
        "username": "u",
        "credential": "p",
    }
    assert turn.for_aiortc().username == "u" and rtc_options(cfg).max_seconds == 30
    assert parse_args([]).ice_servers == () and parse_args([]).live_responder == "model"
    flags = ["--live-responder", "signal", "--live-silence-seconds", "1.2"]
    service = live_service(parse_args(flags), pipe=None)
    loop = service.make_loop()  # the live loop made for a session has the flag's silence
    assert loop.cfg.silence_seconds == 1.2
    loop.close()
    bad = {
        "--live-responder echo": "--live-responder must be one of model, signal",
        "--live-max-seconds 0": "--live-max-seconds must be a positive number",
        "--live-silence-seconds nan": "--live-silence-seconds must be a positive number",
        "--ice-server stun.example.org": "--ice-server must be a stun:, stuns:, turn: or turns:",
        "--ice-server turn:t:3478 --ice-username u": "--ice-username must be given with --ice",
        "--ice-server stun:s:3478 --ice-username u --ice-credential p": "used with a turn:",
    }
    for argv, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            parse_args(argv.split())
