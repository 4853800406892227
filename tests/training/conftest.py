import pytest
from lm_fixtures import tiny_layout

from vidchat.model import SequenceLayout


@pytest.fixture
def layout() -> SequenceLayout:
    return tiny_layout()
