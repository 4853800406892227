"""`data.expression=face`: the demo emotion shows in the brows and eyes as well as the mouth
corners; the default (`mouth`) keeps every pixel and the hash of the worlds made before."""

import numpy as np
import pytest

from vidchat.data.demo_world.face import HEAD_Y, classify_emotion, render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.data.demo_world.script import face_track
from vidchat.data.demo_world.world import DemoWorldConfig
from vidchat.data.demo_world.world import _upper_face as upper_face
from vidchat.errors import ConfigError

MOUTH = np.linspace(0, 1, 8)


def _frames(emotion: str, upper: bool, identity=0, mouth=MOUTH) -> np.ndarray:
    person = make_identities(8)[identity]
    track = face_track(
        np.random.default_rng(5), len(mouth), 8, emotion, mouth, 0.0, upper_face=upper
    )
    return render_face(person, track, 64)


def _upper_face(frames: np.ndarray) -> np.ndarray:
    """Brows and eyes: the rows from above the brows to below the eyes."""
    top, bottom = round((HEAD_Y - 0.19) * 64), round((HEAD_Y - 0.01) * 64)
    return frames[:, top:bottom].astype(np.int64)


@pytest.mark.parametrize("emotion", ["happy", "sad"])
def test_face_expression_moves_the_upper_face_and_keeps_the_mouth_oracle(emotion):
    for identity in range(8):
        neutral = _upper_face(_frames("neutral", True, identity))
        shown = _frames(emotion, True, identity)
        changed = np.abs(_upper_face(shown) - neutral).max(-1) > 40  # [T,h,w] pixels that moved
        # in most frames (a blink shuts the eyes of every expression alike)
        assert np.median(changed.sum(axis=(1, 2))) >= 10, (emotion, identity)
        assert classify_emotion(shown) == emotion


def test_neutral_and_mouth_only_faces_keep_their_upper_face():
    for emotion in ("happy", "neutral", "sad"):
        np.testing.assert_array_equal(
            _upper_face(_frames(emotion, False)), _upper_face(_frames("neutral", False))
        )
    np.testing.assert_array_equal(_frames("neutral", True), _frames("neutral", False))


def test_expression_default_keeps_the_hash_and_a_bad_value_is_an_error():
    assert DemoWorldConfig(expression="mouth").digest() == DemoWorldConfig().digest()
    assert DemoWorldConfig(expression="face").digest() != DemoWorldConfig().digest()
    with pytest.raises(ConfigError, match=r"data\.expression"):
        DemoWorldConfig.from_cfg({"expression": "eyes"})


def test_a_mixed_world_shows_each_kind_in_about_half_its_conversations():
    """`data.expression=mixed`: each conversation is a `face` or a `mouth` one, the same on
    every run, about half each; the two plain worlds keep their one kind."""
    names = [f"demo{i:04d}" for i in range(400)]
    mixed = DemoWorldConfig(expression="mixed")
    kinds = [upper_face(mixed, name) for name in names]
    assert 0.4 < np.mean(kinds) < 0.6
    assert kinds == [upper_face(mixed, name) for name in names]
    assert kinds != [upper_face(DemoWorldConfig(expression="mixed", seed=1), n) for n in names]
    for expression, shown in (("face", True), ("mouth", False)):
        assert {upper_face(DemoWorldConfig(expression=expression), n) for n in names} == {shown}
    assert len({DemoWorldConfig(expression=e).digest() for e in ("mouth", "face", "mixed")}) == 3
