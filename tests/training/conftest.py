import pytest
from lm_fixtures import tiny_layout

from vidchat.model import SequenceLayout


@pytest.fixture(params=["flat", "depth"])
def layout(request) -> SequenceLayout:
    """The tiny layout with flat heads and with depth heads for video and audio: training,
    noise injection, masks and exact resume must hold for both."""
    return tiny_layout(head=request.param)
