"""`data.head_sway` scales the demo heads' motion: 0 gives still heads (same random draws
otherwise), the default keeps the worlds made before the setting existed."""

import hashlib
import json
from dataclasses import asdict

import numpy as np
import pytest

from vidchat.data.demo_world.face import render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.data.demo_world.script import face_track
from vidchat.data.demo_world.world import GENERATOR_VERSION, DemoWorldConfig
from vidchat.errors import ConfigError


@pytest.mark.parametrize("mouth", [None, np.linspace(0, 1, 24)])
def test_zero_sway_holds_the_head_still_and_keeps_the_rest(mouth):
    moving = face_track(np.random.default_rng(3), 24, 24, "happy", mouth)
    still = face_track(np.random.default_rng(3), 24, 24, "happy", mouth, sway=0.0)
    assert np.abs(moving.dx).max() > 0 and np.abs(moving.dy).max() > 0
    assert not still.dx.any() and not still.dy.any()
    np.testing.assert_array_equal(still.eye_open, moving.eye_open)
    np.testing.assert_array_equal(still.mouth_open, moving.mouth_open)
    identity = make_identities(1)[0]
    frames = render_face(identity, still, 64)
    # with the mouth shut (a listener) every frame but blinks is the same picture
    if mouth is None:
        open_eyes = still.eye_open == 1
        assert (frames[open_eyes] == frames[open_eyes][0]).all()


def test_default_sway_keeps_the_world_hash_and_bad_sway_is_an_error():
    cfg = DemoWorldConfig()
    later = ("workers", "head_sway", "expression")  # settings that came after this hash
    before = {k: v for k, v in asdict(cfg).items() if k not in later}
    text = json.dumps({"version": GENERATOR_VERSION, **before}, sort_keys=True)
    assert cfg.digest() == hashlib.sha256(text.encode()).hexdigest()[:16]  # as it was before
    assert DemoWorldConfig(head_sway=0.0).digest() != DemoWorldConfig().digest()
    with pytest.raises(ConfigError, match=r"data\.head_sway"):
        DemoWorldConfig.from_cfg({"head_sway": -1})
