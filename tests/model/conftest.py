import pytest
import torch

from vidchat.model import LayoutConfig, ModelConfig, Role, Segment, SequenceLayout, VidChatLM


def demo_layout(**kw) -> SequenceLayout:
    """The demo tokenizers' layout: video 4x4 codes at 8 fps, audio 2x1024 at 25 Hz."""
    args = dict(
        video_frame_rate=8,
        video_grid=(4, 4),
        video_codebook_size=1024,
        audio_frame_rate=25,
        audio_num_codebooks=2,
        audio_codebook_size=1024,
    )
    return SequenceLayout(LayoutConfig(**{**args, **kw}))


def random_segment(
    layout: SequenceLayout, role: Role, seconds: float, g: torch.Generator
) -> Segment:
    c = layout.cfg
    T = round(seconds * c.video_frame_rate)
    Ta = round(seconds * c.audio_frame_rate)
    h, w = c.video_grid
    video = torch.randint(0, c.video_codebook_size, (T, h, w), generator=g)
    audio = torch.randint(0, c.audio_codebook_size, (c.audio_num_codebooks, Ta), generator=g)
    return Segment(role, video, audio)


def tiny_model(layout: SequenceLayout, seed: int = 0, **kw) -> VidChatLM:
    torch.manual_seed(seed)
    args = dict(dim=64, n_layers=2, n_heads=4, max_seq_len=2048)
    cfg = ModelConfig(vocab_size=layout.vocab.size, num_slots=layout.num_slots, **{**args, **kw})
    return VidChatLM(cfg).eval()


@pytest.fixture(params=["frame_interleaved", "audio_first", "video_first"])
def layout(request) -> SequenceLayout:
    """The demo layout in every chunk order: what holds for one order must hold for all."""
    return demo_layout(chunk_order=request.param)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
