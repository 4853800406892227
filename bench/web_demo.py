"""Benchmark: how soon the web demo's page gets the first chunk of an answer, against the
pipeline's own first-chunk latency, side by side in one run.

    python bench/web_demo.py [--repeats 3] [--threads 1]

Starts `python -m vidchat.webapp`'s server in this process on a free local port (the shipped
demo LM), then alternates, `--repeats` times: (a) the request logic alone (`session.answer` on
a demo partner turn: time to its first chunk) and (b) the same request through the server with
`gradio_client` (time from submit until the first streamed update reaches the client). Medians.
The issue's target: (b) <= (a) + 1 s on CPU.

Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vidchat.data.records import read_record  # noqa: E402
from vidchat.data.sources.demo import ensure_demo_world  # noqa: E402
from vidchat.data.speakervid import load_speakervid  # noqa: E402
from vidchat.inference.loading import load_pipeline  # noqa: E402
from vidchat.media import write_clip  # noqa: E402
from vidchat.webapp import session  # noqa: E402
from vidchat.webapp.app import launch  # noqa: E402
from vidchat.webapp.config import DemoConfig  # noqa: E402


def partner_clip(work: Path) -> Path:
    """A held-out demo partner turn as one mp4 with its audio (as a person uploads it)."""
    root = ensure_demo_world(ROOT / "data_cache" / "demo", {}, progress=False).parent
    pair = next(p for p in load_speakervid(root).pairs_for("test") if p.branch == "dialogue")
    clip = read_record(pair.partner)
    return write_clip(work / "partner.mp4", clip.frames, clip.audio, clip.fps, clip.sample_rate)


def direct(pipe, partner: Path, work: Path) -> float:
    steps = session.answer(pipe, partner, None, session.sampling_config(1, 0, 1, 0), 1.0, work)
    start = time.perf_counter()
    next(steps)
    elapsed = time.perf_counter() - start
    steps.close()
    return elapsed


def through_page(client, partner: Path) -> float:
    from gradio_client import handle_file

    start = time.perf_counter()
    job = client.submit(
        handle_file(str(partner)),
        None,
        "checkpoint default",
        None,
        1.0,
        0,
        1.0,
        0,
        1.0,
        api_name="/answer",
    )
    while not job.outputs():
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    job.result()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pipe = load_pipeline(device="cpu")
    app = launch(DemoConfig(port=port), pipe, block=False)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        partner = partner_clip(Path(tmp))
        through_page(client, partner)  # warm-up: first request compiles and caches
        times: dict[str, list[float]] = {"direct": [], "page": []}
        for _ in range(args.repeats):
            times["direct"].append(direct(pipe, partner, Path(tempfile.mkdtemp(dir=tmp))))
            times["page"].append(through_page(client, partner))
    app.close()
    app.vidchat_work.remove_all()
    a, b = statistics.median(times["direct"]), statistics.median(times["page"])
    print(f"pipeline first chunk s: {a:.3f}")
    print(f"page first chunk s: {b:.3f}")
    print(f"page overhead s: {b - a:.3f}")
    print(f"within 1 s of the pipeline: {'yes' if b <= a + 1.0 else 'no'}")


if __name__ == "__main__":
    main()
