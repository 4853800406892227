import pytest
import torch
from conftest import demo_layout, random_segment

from vidchat.errors import ConfigError
from vidchat.model import LayoutConfig, Modality, Role, Segment, Vocab, pad_batch
from vidchat.model.plan import CHUNK_ORDERS


def assert_same_segments(a, b):
    assert [s.role for s in a] == [s.role for s in b]
    for x, y in zip(a, b):
        assert torch.equal(x.video, y.video)
        assert torch.equal(x.audio, y.audio)


@pytest.mark.parametrize("order", CHUNK_ORDERS)
@pytest.mark.parametrize("pattern", ["time_major", "codebook_major"])
def test_round_trip_multi_turn(pattern, order, gen):
    layout = demo_layout(audio_pattern=pattern, chunk_order=order)
    segs = [
        random_segment(layout, Role.PARTNER, 1.5, gen),
        random_segment(layout, Role.RESPONDER, 2.0, gen),
        random_segment(layout, Role.PARTNER, 3.3, gen),
        random_segment(layout, Role.RESPONDER, 1.1, gen),
    ]
    ref = torch.randint(0, 1024, (4, 4), generator=gen)
    seq = layout.build(segs, ref)
    assert seq.tokens[0] == Vocab.bos and seq.tokens[1] == Vocab.ref
    assert seq.tokens[-1] == Vocab.eot
    assert int((seq.tokens == Vocab.eot).sum()) == 2  # one per responder segment
    out = layout.split(seq.tokens)
    assert torch.equal(out.ref, ref)
    assert_same_segments(out.segments, segs)


def test_round_trip_single_branch_without_partner_or_ref(layout, gen):
    segs = [random_segment(layout, Role.RESPONDER, 2.5, gen)]
    seq = layout.build(segs)
    assert seq.tokens[:2].tolist() == [Vocab.bos, Vocab.responder]
    out = layout.split(seq.tokens)
    assert out.ref is None
    assert_same_segments(out.segments, segs)


@pytest.mark.parametrize("order", CHUNK_ORDERS)
@pytest.mark.parametrize("video_rate,audio_rate", [(8, 25), (7.5, 75), (29.97, 50), (10, 12.5)])
def test_non_dividing_rates_round_trip_and_alignment(video_rate, audio_rate, order, gen):
    layout = demo_layout(
        video_frame_rate=video_rate, audio_frame_rate=audio_rate, chunk_order=order
    )
    seg = random_segment(layout, Role.RESPONDER, 7.3, gen)
    seq = layout.build([seg])
    assert_same_segments(layout.split(seq.tokens).segments, [seg])
    # every chunk i holds frames [floor(i*c*r), floor((i+1)*c*r)) of each stream: the time spans
    # covered by the video and audio in a chunk never drift apart by more than one code frame
    for i in range(int(seq.chunk.max()) + 1):
        in_chunk = seq.chunk == i
        vf = seq.frame[in_chunk & (seq.modality == Modality.VIDEO)]
        af = seq.frame[in_chunk & (seq.modality == Modality.AUDIO)]
        assert int(vf.min()) == int(i * 0.5 * video_rate // 1)
        assert abs(vf.min() / video_rate - af.min() / audio_rate) < 1 / min(video_rate, audio_rate)
        if i < int(seq.chunk.max()):  # full chunks end within one code frame of each other
            assert (
                abs((vf.max() + 1) / video_rate - (af.max() + 1) / audio_rate)
                <= 1 / min(video_rate, audio_rate) + 1e-9
            )


@pytest.mark.parametrize("video_rate,audio_rate", [(8, 25), (7.5, 75), (10, 12.5)])
def test_frame_interleaved_puts_each_sound_before_its_frame(video_rate, audio_rate, gen):
    # within a chunk, an audio step comes before a video frame exactly when the step starts
    # before the frame ends: the model draws each mouth right after the sound it makes
    layout = demo_layout(
        video_frame_rate=video_rate, audio_frame_rate=audio_rate, chunk_order="frame_interleaved"
    )
    seq = layout.build([random_segment(layout, Role.RESPONDER, 3.0, gen)])
    pos = torch.arange(len(seq))
    video = (seq.modality == Modality.VIDEO) & (seq.row == 0) & (seq.col == 0)
    audio = (seq.modality == Modality.AUDIO) & (seq.codebook == 0)
    before = pos[audio][:, None] < pos[video][None, :]  # [audio steps, video frames]
    starts_earlier = (
        seq.frame[audio][:, None] / audio_rate < (seq.frame[video][None, :] + 1) / video_rate
    )
    same_chunk = seq.chunk[audio][:, None] == seq.chunk[video][None, :]
    assert torch.equal(before[same_chunk], starts_earlier[same_chunk])
    # and a frame's codes are never split: video runs are whole frames of h*w codes
    kinds = seq.modality[seq.modality != Modality.SPECIAL]
    runs = torch.unique_consecutive(kinds, return_counts=True)
    assert bool((runs[1][runs[0] == Modality.VIDEO] % 16 == 0).all())


def test_build_accepts_uint16_numpy_codes_from_shards(layout, gen):
    seg = random_segment(layout, Role.RESPONDER, 1.0, gen)
    as_np = Segment(
        Role.RESPONDER, seg.video.numpy().astype("uint16"), seg.audio.numpy().astype("uint16")
    )
    a, b = layout.build([seg], ref=seg.video[0]), layout.build([as_np], ref=as_np.video[0])
    assert torch.equal(a.tokens, b.tokens)


def test_chunk_bounds_cumulative(layout):
    bounds = layout.chunk_bounds(100, 25)  # 12.5 frames per chunk
    assert [e - s for s, e in bounds] == [12, 13] * 4
    assert bounds[-1][1] == 100 and all(bounds[i][1] == bounds[i + 1][0] for i in range(7))


def test_metadata_and_slots(layout, gen):
    seg = random_segment(layout, Role.RESPONDER, 0.5, gen)
    seq = layout.build([seg], ref=seg.video[0])
    video = seq.modality == Modality.VIDEO
    assert torch.equal(seq.slots[video], 1 + seq.row[video] * 4 + seq.col[video])
    audio = seq.modality == Modality.AUDIO
    assert torch.equal(seq.slots[audio], 1 + 16 + seq.codebook[audio])
    assert torch.equal(seq.next_slots[:-1], seq.slots[1:])
    lo, hi = layout.vocab.video_range
    assert bool(((seq.tokens[video] >= lo) & (seq.tokens[video] < hi)).all())
    for k in range(2):
        lo, hi = layout.vocab.audio_range(k)
        t = seq.tokens[audio & (seq.codebook == k)]
        assert t.numel() == 12 and bool(((t >= lo) & (t < hi)).all())
    assert layout.vocab.size == 7 + 1024 + 2 * 1024


def test_loss_masks(layout, gen):
    segs = [
        random_segment(layout, Role.PARTNER, 1, gen),
        random_segment(layout, Role.RESPONDER, 1, gen),
    ]
    seq = layout.build(segs, ref=segs[0].video[0])
    resp = seq.loss_mask("responder")
    first = int((seq.tokens == Vocab.responder).nonzero()[0, 0])
    assert not resp[: first + 1].any() and resp[first + 1 :].all()
    after = seq.loss_mask("after_ref")
    assert not after[: 2 + 16].any() and after[2 + 16 :].all()
    with pytest.raises(ConfigError):
        seq.loss_mask("everything")


def test_listening_turn_with_silence_codes(layout, gen):
    partner = random_segment(layout, Role.PARTNER, 1, gen)
    listener = random_segment(layout, Role.RESPONDER, 1, gen)
    listener.audio = torch.full_like(listener.audio, 7)  # the codec's silence code
    out = layout.split(layout.build([partner, listener]).tokens)
    assert_same_segments(out.segments, [partner, listener])


def test_grammar_matches_built_responder(layout, gen):
    # the grammar's slot/range sequence equals what build produces for a whole-chunk responder
    seg = random_segment(layout, Role.RESPONDER, 2.0, gen)  # 4 whole chunks
    seq = layout.build([seg])
    g = layout.responder_grammar(max_chunks=4)
    body = seq.tokens[2:]  # after <bos> <responder>
    assert len(g) == body.numel()
    assert bool(((body >= g.lo) & (body < g.hi)).all())
    assert torch.equal(g.slots, seq.slots[2:])
    assert g.chunk_starts == (seq.tokens == Vocab.chunk).nonzero()[:, 0].sub(2).tolist() + [
        len(g) - 1
    ]
    assert g.lo[0] == Vocab.chunk and g.hi[0] == Vocab.chunk + 1  # at least one chunk
    assert (g.lo[-1], g.hi[-1]) == (Vocab.eot, Vocab.eot + 1)  # budget spent


def test_prompt_and_left_padding(layout, gen):
    a = layout.prompt([random_segment(layout, Role.PARTNER, 1, gen)])
    b = layout.prompt([random_segment(layout, Role.PARTNER, 0.5, gen)])
    assert a.tokens[-1] == Vocab.responder and a.next_slots[-1] == 0
    batch = pad_batch([a, b], side="left", loss_mode="after_ref")
    assert batch["tokens"].shape == (2, len(a))
    assert torch.equal(batch["tokens"][1, -len(b) :], b.tokens)
    assert not batch["valid"][1, : len(a) - len(b)].any() and batch["valid"][0].all()
    assert not batch["loss_mask"][1, : len(a) - len(b)].any()


def test_bad_inputs_raise(layout, gen):
    with pytest.raises(ConfigError, match="audio_pattern"):
        demo_layout(audio_pattern="delay")
    with pytest.raises(ConfigError, match="chunk_seconds"):
        demo_layout(chunk_seconds=0)
    with pytest.raises(ConfigError, match="chunk_order"):
        demo_layout(chunk_order="random")
    seg = random_segment(layout, Role.RESPONDER, 2, gen)
    with pytest.raises(ValueError, match="differ"):
        layout.build([Segment(Role.RESPONDER, seg.video, seg.audio[:, :10])])
    with pytest.raises(ValueError, match="codes must lie"):
        layout.build([Segment(Role.RESPONDER, seg.video + 1024, seg.audio)])
    bad = layout.build([seg]).tokens.clone()
    bad = torch.cat([bad[:3], bad[4:]])  # drop one video code: a partial frame
    with pytest.raises(ValueError, match="malformed"):
        layout.split(bad)


def test_from_specs():
    class Spec:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    video = Spec(frame_rate=8.0, num_codebooks=1, codebook_size=1024, grid=(4, 4))
    audio = Spec(frame_rate=25.0, num_codebooks=2, codebook_size=1024, grid=None)
    cfg = LayoutConfig.from_specs(video, audio, chunk_seconds=0.5)
    assert cfg == demo_layout().cfg
    with pytest.raises(ConfigError, match="unknown"):
        LayoutConfig.from_specs(video, audio, chunk_secs=0.5)
