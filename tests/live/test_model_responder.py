"""The shipped responder in the live loop: listening frames come from the model (not a frozen
frame), the answer arrives with a voice, both on the reference face; a stop request ends a
chunk in flight."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.live.test_loop import partner, silence, speech
from vidchat.data.demo_world.face import measure_mouth_opening, neutral_track, render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.eval.metrics.demo_oracle import identity_match
from vidchat.inference.loading import load_pipeline
from vidchat.live.config import LiveConfig
from vidchat.live.drive import drive
from vidchat.live.loop import LiveLoop
from vidchat.live.responders import ModelResponder
from vidchat.media import Clip
from vidchat.model.generate import SamplingConfig

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(device="cpu")


@pytest.fixture(scope="module")
def gallery(pipe) -> dict[str, np.ndarray]:
    """The default demo world's faces (8 identities, seed 0) at the model's size."""
    size = pipe.frame_size[0]
    return {p.name: render_face(p, neutral_track(), size)[0] for p in make_identities(8)}


def test_listens_and_answers_on_the_reference_face(pipe, gallery):
    responder = ModelResponder(pipe, gallery["id05"], answer_max_seconds=1.5)
    loop = LiveLoop(responder, LiveConfig())
    rec = drive(loop, partner(speech(2.5), silence(2.5)), tail_seconds=0.0, realtime=False)
    loop.close()
    states = rec.states()
    listening = [f for f, s in zip(rec.frames, states) if s == "listening"]
    answering = [f for f, s in zip(rec.frames, states) if s == "answering"]
    turn_end = next(e for e in loop.events if e.kind == "turn_end")
    heard = [t.frame for t in rec.ticks if t.frame is not None and 1.0 <= t.out < turn_end.out]
    # listening: model frames that move with the partner, not the reference held still
    distinct = {f.tobytes() for f in heard}
    assert len(distinct) >= 4, len(distinct)
    assert any(not np.array_equal(f, responder.still()) for f in heard)
    assert len(answering) >= 8  # 1.5 s at 8 fps, give or take a chunk
    # a listener's mouth stays shut (its voice is fixed to silence); the answer's opens
    assert measure_mouth_opening(np.stack(heard)).mean() < 0.05
    assert measure_mouth_opening(np.stack(answering)).mean() > 0.1
    for frames in (listening, answering):
        hits = [identity_match(f[None], gallery, "id05").value for f in frames]
        assert np.mean(hits) >= 0.9
    wave = rec.waveform()
    voiced = [np.abs(a).max() for a, t in zip(rec.audio, rec.ticks) if t.state == "answering"]
    # the answer speaks: voiced on more than 0.6 of the ticks a demo voice (syllables with gaps
    # between them) is voiced on
    demo_voice = speech(1.5)
    tick = round(LiveConfig().tick_seconds * 16000)  # 20 ms
    blocks = demo_voice[: len(demo_voice) // tick * tick].reshape(-1, tick)
    demo_share = np.mean(np.abs(blocks).max(axis=1) > 0.01)  # 0.52 (0.43-0.52 over seeds)
    assert np.mean(np.array(voiced) > 0.01) > 0.6 * demo_share
    assert np.abs(wave[: int(turn_end.out * 16000)]).max() == 0  # the listener is silent


def test_stop_ends_a_chunk_in_flight(pipe, gallery):
    audio = partner(speech(1.5))
    clip = Clip(np.stack([gallery["id02"]] * 12), audio.audio, audio.fps, 16000, 1.5)
    sampling = SamplingConfig.from_dict({"seed": 0})
    stop = threading.Event()
    chunks = []
    for chunk in pipe.stream(clip, gallery["id05"], max_seconds=2.0, sampling=sampling, stop=stop):
        chunks.append(chunk)
        stop.set()  # the next chunk is cut between two tokens
    assert len(chunks) == 1
    stop.set()
    assert list(pipe.stream(clip, gallery["id05"], max_seconds=2.0, stop=stop)) == []
    full = list(pipe.stream(clip, gallery["id05"], max_seconds=1.0, sampling=sampling))
    assert np.array_equal(full[0].frames, chunks[0].frames)  # unstopped, the same first chunk
