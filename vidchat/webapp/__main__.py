"""`python -m vidchat.webapp [--checkpoint STEM] [--host H] [--port P] [--share]`: the web demo,
the upload page at / and the live chat at /live."""

from __future__ import annotations

import logging
import signal
import sys

from vidchat.cli import ArgumentParser, add_import_argument, exit_on_user_error
from vidchat.errors import VidchatError
from vidchat.utils.imports import import_user_modules
from vidchat.webapp.config import DemoConfig
from vidchat.webapp.workdirs import WorkDirs


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    d = DemoConfig()
    p = ArgumentParser(prog="python -m vidchat.webapp", description=__doc__)
    p.add_argument("--checkpoint", default=None, help="LM stem (default: SFT export or demo LM)")
    p.add_argument("--host", default=d.host, help="interface to serve on (default: local only)")
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--share", action="store_true", help="also open a public Gradio link")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb)
    p.add_argument("--max-input-seconds", type=float, default=d.max_input_seconds)
    p.add_argument("--max-answer-seconds", type=float, default=d.max_answer_seconds)
    p.add_argument("--queue-size", type=int, default=d.queue_size)
    p.add_argument(
        "--demo-data", default=d.demo_data, help="demo world to offer clips and faces from"
    )
    p.add_argument("--device", default=d.device)
    p.add_argument(
        "--dtype",
        default=d.dtype,
        help="LM weights: auto (bfloat16 on a GPU, float32 on a CPU), float32, bfloat16 or float16",
    )
    p.add_argument(
        "--live-responder",
        default=d.live_responder,
        help="the live page's responder: model, or signal (blue/red frames and a 440 Hz tone "
        "for listening/answering: a connection check without a model)",
    )
    p.add_argument("--live-max-seconds", type=float, default=d.live_max_seconds)
    p.add_argument(
        "--live-silence-seconds",
        type=float,
        default=d.live_silence_seconds,
        help="the silence that ends a person's turn on the live page",
    )
    p.add_argument(
        "--ice-server",
        dest="ice_servers",
        action="append",
        default=[],
        metavar="URL",
        help="a STUN or TURN server for the live page, e.g. stun:stun.example.org:3478 or "
        "turn:turn.example.org:3478 (repeatable; default: none, direct connections only)",
    )
    p.add_argument("--ice-username", default=None, help="the TURN servers' username")
    p.add_argument("--ice-credential", default=None, help="the TURN servers' password")
    p.add_argument(
        "--ice-loopback",
        action="store_true",
        help="live media over 127.0.0.1 only (a browser on this machine started with "
        "--allow-loopback-in-peer-connection)",
    )
    add_import_argument(p)
    args = p.parse_args(argv)
    import_user_modules(args.imports, "--import")
    del args.imports
    return DemoConfig(**{k.replace("-", "_"): v for k, v in vars(args).items()})


def _serve(cfg: DemoConfig) -> None:
    handler = logging.StreamHandler()  # vidchat's INFO lines (a live answer's latency) on stderr
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logging.getLogger("vidchat").addHandler(handler)
    logging.getLogger("vidchat").setLevel(logging.INFO)
    work = WorkDirs(max_age_s=cfg.delete_after_s)  # removes what killed servers left
    try:
        work.hand_to_gradio()
        try:
            from vidchat.webapp.app import launch
        except ModuleNotFoundError as exc:  # gradio, or aiortc for the live page
            raise VidchatError(
                f"the web demo needs {exc.name}: pip install 'vidchat[demo]'"
            ) from exc
        from vidchat.inference.loading import load_pipeline

        pipe = load_pipeline(cfg.checkpoint, device=cfg.device, dtype=cfg.dtype)
        url = f"http://{cfg.host}:{cfg.port}"
        print(f"vidchat demo on {url} (Ctrl-C to stop); live chat on {url}/live", flush=True)
        app = launch(cfg, pipe, block=False, work=work)
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})  # SIGTERM stops it like Ctrl-C
        finally:
            app.vidchat_live.shutdown()  # type: ignore[attr-defined]  # a live chat ends first
            app.close()
    finally:
        work.remove_all()


def main(argv: list[str] | None = None) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    cfg = exit_on_user_error(lambda: parse_args(argv))
    exit_on_user_error(lambda: _serve(cfg))
    sys.exit(0)


if __name__ == "__main__":
    main()
