"""Bundling a consolidated checkpoint (`vidchat.training.lm.bundle`): same weights, a default face
that infer.py picks up."""

import numpy as np
import pytest

from vidchat.errors import VidchatError
from vidchat.inference.loading import load_pipeline
from vidchat.media import write_image
from vidchat.model.checkpoint import read_config
from vidchat.training.lm.bundle import bundle


def test_bundle_copies_weights_and_attaches_the_reference(saved_responder, tmp_path):
    face = np.zeros((48, 48, 3), np.uint8)
    face[:, :, 1] = 200  # a green face, unlike the fixture's grey default
    write_image(tmp_path / "face.png", face)
    dst = bundle(saved_responder, tmp_path / "rel" / "lm", reference=tmp_path / "face.png")
    assert read_config(dst)["meta"]["reference_image"] == "lm.reference.png"
    assert (
        dst.with_suffix(".safetensors").read_bytes()
        == saved_responder.with_suffix(".safetensors").read_bytes()
    )
    pipe = load_pipeline(dst, device="cpu")
    assert pipe.default_reference.shape == (32, 32, 3)
    assert pipe.default_reference[..., 1].mean() > 190 and pipe.default_reference[..., 0].max() < 10


def test_bundle_of_a_missing_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(VidchatError, match="consolidated LM checkpoint not found"):
        bundle(tmp_path / "nope", tmp_path / "out")
