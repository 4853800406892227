"""Identity: the same real person scores high, another person low (dlib ResNet)."""

import numpy as np
import pytest

from vidchat.eval.metrics.identity import (
    ARCFACE_TEMPLATE,
    arcface_similarity,
    identity_similarity,
    similarity_transform,
    warp_affine,
)
from vidchat.perception.frames import resize_frames


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE
    dst = src @ (scale * rot).T + shift
    m = similarity_transform(src, dst)
    assert m[:, :2] == pytest.approx(scale * rot) and m[:, 2] == pytest.approx(shift)


def test_warp_with_a_translation_moves_pixels():
    img = np.zeros((20, 20, 3), np.uint8)
    img[5, 7] = 255
    out = warp_affine(img, np.array([[1.0, 0, -2], [0, 1.0, -1]]), 20)  # image (7,5) -> out (5,4)
    assert out[4, 5, 0] == pytest.approx(255) and out[5, 7, 0] == pytest.approx(0)


def test_arcface_without_weights_is_skipped_with_a_reason():
    with pytest.warns(UserWarning, match="arcface"):
        res = arcface_similarity(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    assert not res.available and "ONNX" in res.reason


@pytest.mark.slow
def test_same_person_scores_higher_than_another_person(carphone_frames, astronaut_image):
    pytest.importorskip("dlib")
    reference = carphone_frames[0]
    same = identity_similarity(carphone_frames[30::30], reference)
    # another real person, shown at the clip's size (a generated frame of the wrong identity)
    other_frames = resize_frames(astronaut_image[None, :300, 100:400], 144, 176)
    other = identity_similarity(other_frames, reference)
    assert same.details["face_rate"] == 1.0 and other.details["face_rate"] == 1.0
    assert same.value > 0.9 and same.value > other.value + 0.08
    assert same.details["distance"] < 0.6 < other.details["distance"]  # dlib's same-person cut


@pytest.mark.slow
def test_no_face_in_the_reference_is_unavailable(carphone_frames):
    pytest.importorskip("dlib")
    with pytest.warns(UserWarning, match="reference"):
        res = identity_similarity(carphone_frames[:2], np.full((144, 176, 3), 128, np.uint8))
    assert not res.available
