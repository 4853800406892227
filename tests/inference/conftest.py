"""The shipped demo responder, loaded once for the inference tests that score it."""

import pytest

from tests.conftest import REPO_ROOT
from vidchat.inference.loading import load_pipeline

DEMO_LM = REPO_ROOT / "vidchat" / "assets" / "demo64" / "lm"


@pytest.fixture(scope="session")
def demo_pipe():
    return load_pipeline(DEMO_LM, device="cpu")
