"""The default (64 px) demo LM keeps its reference identity when the partner is a real person.

The partner is the carphone recording (a real face, 176x144) with LibriVox speech muxed onto
it: nothing like the cartoon partners of the demo world. Per frame of the answer, the demo
identity oracle (nearest demo identity by colour layout) must name the reference identity for
at least 95% of the frames (issue #11).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.real_media import carphone_path, librivox_wavs
from vidchat.cli import compose
from vidchat.data.demo_world.face import neutral_track, render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.eval.metrics.demo_oracle import identity_match
from vidchat.media import centre_square, probe, read_clip
from vidchat.media.clip import Clip
from vidchat.model.generate import SamplingConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipe(demo_pipe):
    return demo_pipe


@pytest.fixture(scope="module")
def gallery(pipe) -> dict[str, np.ndarray]:
    """The demo world's reference faces (its default settings), at the model's frame size."""
    data = compose("train").data
    size = pipe.frame_size[0]
    people = make_identities(int(data.num_identities), seed=int(data.seed))
    return {p.name: render_face(p, neutral_track(), size)[0] for p in people}


def real_partner(pipe) -> Clip:
    """carphone's face (centre square) with a LibriVox reading as its voice."""
    video_path, (wav, _) = carphone_path(), librivox_wavs()[0]
    info = probe(video_path)
    video = read_clip(
        video_path,
        fps=pipe.fps,
        size=pipe.frame_size,
        bbox=centre_square(info.width, info.height),
        require_audio=False,
    )
    speech = read_clip(wav, sample_rate=pipe.sample_rate, require_video=False)
    n = min(video.num_frames, int(len(speech.audio) / pipe.sample_rate * pipe.fps))
    samples = int(round(n / pipe.fps * pipe.sample_rate))
    return Clip(video.frames[:n], speech.audio[:samples], pipe.fps, pipe.sample_rate, n / pipe.fps)


@pytest.mark.parametrize("reference", ["id00", "id02", "id05", "id07"])
def test_answer_keeps_the_reference_identity_on_a_real_partner(pipe, gallery, reference):
    partner = real_partner(pipe)
    hits = []
    for seed in (0, 1):
        response = pipe.respond(
            partner,
            gallery[reference],
            max_seconds=3.0,
            sampling=SamplingConfig.from_dict({"seed": seed}),
        )
        hits += [identity_match(f[None], gallery, reference).value for f in response.frames]
    assert len(hits) >= 16
    share = float(np.mean(hits))
    assert share >= 0.95, f"reference {reference} kept on {share:.0%} of {len(hits)} frames"
