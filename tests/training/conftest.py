import pytest
from lm_fixtures import tiny_layout

from vidchat.model import SequenceLayout


@pytest.fixture(params=["flat", "depth", "maskgit"])
def layout(request) -> SequenceLayout:
    """The tiny layout with flat heads, with depth heads for video and audio, and with a
    MaskGIT frame head (audio depth): training, noise injection, masks and exact resume must
    hold for each."""
    return tiny_layout(head=request.param)
