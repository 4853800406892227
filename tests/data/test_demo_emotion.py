"""The demo world's emotion oracle reads the rendered mouth shape back from pixels."""

import numpy as np
import pytest

from vidchat.data.demo_world.face import classify_emotion, render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.data.demo_world.script import face_track
from vidchat.media.frames import crop_resize


@pytest.mark.parametrize("size", [64, 32])
@pytest.mark.parametrize("emotion", ["happy", "neutral", "sad"])
def test_classify_emotion_recovers_the_rendered_emotion(emotion, size):
    rng = np.random.default_rng(1)
    for identity in make_identities(8):
        track = face_track(rng, 8, 8, emotion, rng.uniform(0, 1, 8))
        frames = render_face(identity, track, 64)
        frames = np.stack([crop_resize(f, (size, size)) for f in frames])
        assert classify_emotion(frames) == emotion


def test_classify_emotion_of_a_blank_frame_is_neutral():
    assert classify_emotion(np.full((2, 32, 32, 3), 200, np.uint8)) == "neutral"
