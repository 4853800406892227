"""Live chat latency: the shipped responder in the live loop, fed in real time from a scripted
partner (demo speech and a talking demo face), as a camera and microphone would.

    python bench/live.py [--seconds 60] [--threads 1] [--checkpoint STEM] [--device cpu]

The script repeats a 10 s cycle: the partner speaks 2.5 s and pauses 1.8 s (the turn ends after
`silence_seconds` and the answer starts), speaks again 2 s over the answer (a barge-in), then
pauses 3.7 s (the second turn's answer). It prints:
- `live first answer frame ms`: from the loop's turn-end decision to the first answer frame
  sent (median over turns); `live speech end to first answer frame ms` adds the silence wait;
- `live barge-in to listening ms`: from the onset of the partner's speech in the file (Silero on
  the file) to the first listening frame sent after the barge-in (median);
- `live output frame interval p95 ms`: between frames sent, by the wall clock;
- `live dropped frames`: frames sent more than one frame interval after their time;
- `live answer underrun ms`: answer time with no audio ready (the model fell behind);
- `live listening chunk ms`: the model's compute per listening chunk (mean).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from vidchat.data.demo_world.face import render_face  # noqa: E402
from vidchat.data.demo_world.identities import make_identities  # noqa: E402
from vidchat.data.demo_world.script import speaking_track  # noqa: E402
from vidchat.data.demo_world.speech import synthesize_turn  # noqa: E402
from vidchat.inference.loading import load_pipeline  # noqa: E402
from vidchat.live.config import LiveConfig  # noqa: E402
from vidchat.live.drive import Recording, drive  # noqa: E402
from vidchat.live.loop import LiveLoop  # noqa: E402
from vidchat.live.responders import ModelResponder  # noqa: E402
from vidchat.media import Clip  # noqa: E402
from vidchat.perception.vad import WINDOW, speech_probabilities  # noqa: E402

CYCLE = [("speech", 2.5), ("silence", 1.8), ("speech", 2.0), ("silence", 3.7)]


def scripted_partner(seconds: float, fps: float, sr: int, size: int) -> Clip:
    """Repeated `CYCLE`s of demo speech, with a demo face whose mouth follows it."""
    rng = np.random.default_rng(0)
    person = make_identities(8)[3]
    pieces = []
    while sum(map(len, pieces)) < seconds * sr:
        for kind, length in CYCLE:
            n = int(round(length * sr))
            if kind == "speech":
                pieces.append(synthesize_turn(rng, person, "happy", length, sr)[0])
            else:
                pieces.append(np.zeros(n, np.float32))
    audio = np.concatenate(pieces)[: int(seconds * sr)]
    frames = render_face(person, speaking_track(rng, audio, sr, fps, "happy"), size)
    T = len(frames)
    return Clip(frames, audio[: int(round(T / fps * sr))], fps, sr, T / fps)


class TimedResponder(ModelResponder):
    """The model responder, timing its listening chunks."""

    listen_seconds: list[float]

    def listen(self, partner, stop):
        started = time.perf_counter()
        frames = super().listen(partner, stop)
        if frames is not None:
            self.listen_seconds.append(time.perf_counter() - started)
        return frames


def onsets(audio: np.ndarray, sr: int, threshold: float) -> list[float]:
    """Starts of speech runs in the file (Silero, 32 ms windows), in seconds."""
    speech = speech_probabilities(audio, sr) >= threshold
    starts = np.flatnonzero(speech & ~np.r_[False, speech[:-1]])
    return [float(i * WINDOW / 16000) for i in starts]


def report(loop: LiveLoop, rec: Recording, partner: Clip, listen_s: list[float]) -> None:
    cfg, fps = loop.cfg, loop.fps
    first, from_speech, barge = [], [], []
    sent = [(t.wall, t.out, t.state) for t in rec.ticks if t.frame is not None]
    starts = onsets(partner.audio, partner.sample_rate, cfg.speech_threshold)
    for e in loop.events:
        if e.kind == "turn_end":
            answer = next(
                (a for a in loop.events if a.kind == "answer_frame" and a.wall >= e.wall), None
            )
            if answer is not None:
                first.append(answer.wall - e.wall)
                speech_end = float(e.detail.rsplit(" ", 1)[1])
                from_speech.append(answer.wall - (rec.started + speech_end))
        if e.kind == "barge_in":
            onset = max((s for s in starts if s <= e.mic), default=None)
            frame = next((w for w, _, s in sent if w >= e.wall and s == "listening"), None)
            if onset is not None and frame is not None:
                barge.append(frame - (rec.started + onset))
    walls = np.array([w for w, _, _ in sent])
    late = np.array([w - (rec.started + out) for w, out, _ in sent])
    ms = lambda xs: f"{1000 * float(np.median(xs)):.0f}" if xs else "n/a"  # noqa: E731
    print(f"turns answered: {len(first)}, barge-ins: {len(barge)}")
    print(f"live first answer frame ms: {ms(first)}")
    print(f"live speech end to first answer frame ms: {ms(from_speech)}")
    print(f"live barge-in to listening ms: {ms(barge)}")
    print(f"live output frame interval p95 ms: {1000 * np.percentile(np.diff(walls), 95):.0f}")
    print(f"live dropped frames: {int((late > 1.0 / fps).sum())}")
    print(f"live answer underrun ms: {loop.underrun_ticks * cfg.tick_seconds * 1000:.0f}")
    print(f"live listening chunk ms: {ms(listen_s) if listen_s else 'n/a'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0, help="length of the scripted session")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--checkpoint", default=None, help="LM stem (default: the shipped one)")
    p.add_argument("--device", default="auto")
    p.add_argument("--answer-seconds", type=float, default=3.0, help="longest answer")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.checkpoint, device=args.device)
    partner = scripted_partner(args.seconds, pipe.fps, pipe.sample_rate, pipe.frame_size[0])
    responder = TimedResponder(pipe, answer_max_seconds=args.answer_seconds)
    responder.listen_seconds = []
    warm = LiveLoop(responder, LiveConfig())  # first calls pay one-off costs: not measured
    drive(warm, scripted_partner(5.0, pipe.fps, pipe.sample_rate, 64), realtime=False)
    warm.close()
    responder.listen_seconds = []
    loop = LiveLoop(responder, LiveConfig(answer_max_seconds=args.answer_seconds))
    print(f"device: {args.device}, threads: {torch.get_num_threads()}, {args.seconds:.0f} s")
    rec = drive(loop, partner, tail_seconds=1.0, realtime=True, progress=True)
    loop.close()
    report(loop, rec, partner, responder.listen_seconds)


if __name__ == "__main__":
    main()
