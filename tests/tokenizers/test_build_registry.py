"""Tokenizers are built by `kind` from a registry: a new kind is one registered builder, and a
kind nobody registered is one config error naming the known ones."""

from __future__ import annotations

import pytest

from vidchat.errors import ConfigError
from vidchat.tokenizers import build

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("stream", "fn"),
    [("video", build.build_video_tokenizer), ("audio", build.build_audio_tokenizer)],
)
def test_an_unknown_kind_is_one_config_error_naming_the_known_kinds(stream, fn):
    with pytest.raises(ConfigError, match=rf"tokenizer.{stream}.kind='magvit' is not registered"):
        fn({"kind": "magvit", "checkpoint": "anything"})


def test_a_new_kind_is_one_registered_builder(monkeypatch):
    monkeypatch.setattr(build, "VIDEO_TOKENIZERS", dict(build.VIDEO_TOKENIZERS))
    made = []

    @build.register_video_tokenizer("constant")
    def constant(cfg):
        made.append(cfg)
        return "a tokenizer"

    assert build.build_video_tokenizer({"kind": "constant", "size": 3}) == "a tokenizer"
    assert made == [{"kind": "constant", "size": 3}]
    with pytest.raises(ConfigError, match="checkpoint is not set"):
        build.build_video_tokenizer({})  # the default kind is still `vq`
