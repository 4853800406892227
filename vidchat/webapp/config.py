"""`DemoConfig`: the web demo's options, checked before the server starts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidchat.inference.options import check_dtype
from vidchat.utils.typed import check

LIVE_RESPONDERS = ("model", "signal")
ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


@dataclass(frozen=True)
class DemoConfig:
    checkpoint: str | None = (
        None  # consolidated LM stem; None = this clone's SFT export or the demo LM
    )
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False  # a public Gradio link (off: nothing leaves the machine)
    max_upload_mb: float = 50.0  # uploads above this are refused by the server
    max_input_seconds: float = 30.0  # partner turns longer than this are refused
    max_answer_seconds: float = 10.0  # the "maximum length" slider's ceiling
    queue_size: int = 16  # requests waiting beyond the one being generated
    delete_after_s: int = 900  # uploads and answers older than this are deleted
    demo_data: str = "data_cache/demo"  # demo world: partner clips and identities to pick from
    device: str = "auto"
    dtype: str = "auto"  # LM weights: auto (bfloat16 on a GPU, float32 on a CPU), float32, ...
    # The live page (/live): its responder ("signal": blue/red and a tone, a check without a
    # model), a session's length, and the STUN/TURN servers for it and the browser (none: the
    # browser and this server must reach each other directly, e.g. on one machine or LAN).
    live_responder: str = "model"
    live_max_seconds: float = 300.0
    live_silence_seconds: float = 0.7  # the person's silence that ends their turn
    ice_servers: tuple[str, ...] = ()  # stun:HOST:PORT or turn:HOST:PORT URLs
    ice_username: str | None = None  # for the turn: servers
    ice_credential: str | None = None
    ice_loopback: bool = False  # live media over 127.0.0.1 only (a local browser started with
    # --allow-loopback-in-peer-connection; the tests)

    def __post_init__(self) -> None:
        check("--port", 0 <= self.port <= 65535, "in [0, 65535]", self.port)
        object.__setattr__(self, "ice_servers", tuple(self.ice_servers or ()))
        for name in (
            "max_upload_mb",
            "max_input_seconds",
            "max_answer_seconds",
            "live_max_seconds",
            "live_silence_seconds",
        ):
            value = getattr(self, name)
            check(
                f"--{name.replace('_', '-')}",
                math.isfinite(value) and value > 0,
                "a positive number",
                value,
            )
        check_dtype(self.dtype)
        check("--queue-size", self.queue_size >= 1, ">= 1", self.queue_size)
        check("--delete-after-s", self.delete_after_s >= 60, ">= 60", self.delete_after_s)
        check(
            "--live-responder",
            self.live_responder in LIVE_RESPONDERS,
            f"one of {', '.join(LIVE_RESPONDERS)}",
            self.live_responder,
        )
        for url in self.ice_servers:
            check(
                "--ice-server",
                url.startswith(ICE_SCHEMES) and " " not in url,
                "a stun:, stuns:, turn: or turns: URL",
                url,
            )
        pair = (self.ice_username is None, self.ice_credential is None)
        check(
            "--ice-username", pair[0] == pair[1], "given with --ice-credential", self.ice_username
        )
        turn = any(u.startswith(("turn:", "turns:")) for u in self.ice_servers)
        check(
            "--ice-username", turn or pair[0], "used with a turn: --ice-server", self.ice_username
        )
