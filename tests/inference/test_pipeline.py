"""The responder pipeline: streaming equals one-shot generation, outputs decode and align."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidchat.inference.pipeline import StreamStats, fit_audio
from vidchat.model.generate import SamplingConfig


def test_depth_head_pipeline_streams_like_one_shot(partner_clip):
    from tests.tiny_responder import tiny_pipeline

    test_stream_equals_one_shot(tiny_pipeline(head="depth"), partner_clip)


def test_temporal_stride_pipeline_streams_full_rate_video(partner_clip):
    """Two frames per code frame: the LM runs at 4 code frames/s, the answer plays at 8 fps."""
    from tests.tiny_responder import tiny_pipeline

    pipe = tiny_pipeline(head="depth", temporal_stride=2)
    assert pipe.fps == 8.0 and pipe.layout.cfg.video_frame_rate == 4.0
    test_stream_equals_one_shot(pipe, partner_clip)
    response = pipe.respond(pipe.read_partner(partner_clip), max_seconds=1.0)
    assert response.video_codes.shape[0] == 4 and response.frames.shape[0] == 8


def test_stream_equals_one_shot(pipeline, partner_clip):
    clip = pipeline.read_partner(partner_clip)
    sampling = SamplingConfig.from_dict({"seed": 7})
    stats = StreamStats()
    chunks = list(pipeline.stream(clip, max_seconds=1.5, sampling=sampling, stats=stats))
    whole = pipeline.respond(clip, max_seconds=1.5, sampling=sampling)

    streamed_frames = np.concatenate([c.frames for c in chunks])
    np.testing.assert_array_equal(streamed_frames, whole.frames)
    streamed_audio = np.concatenate([c.audio for c in chunks])
    # Causal codec + full left context: the streamed waveform is the one-shot waveform. The
    # one-shot one is fit to the frames' duration: where a chunk ends inside a codec frame, its
    # last part-frame is silence the stream does not send.
    n, hop = len(streamed_audio), pipeline.audio_tokenizer.spec.hop_length
    assert 0 < n <= len(whole.audio) < n + hop
    np.testing.assert_allclose(streamed_audio, whole.audio[:n], atol=1e-5)
    assert not whole.audio[n:].any()
    assert stats.first_chunk_s is not None and stats.first_chunk_s > 0
    assert stats.output_s == whole.frames.shape[0] / pipeline.fps


def test_response_audio_and_video_have_the_same_duration(pipeline, partner_clip):
    clip = pipeline.read_partner(partner_clip)
    response = pipeline.respond(
        clip, max_seconds=1.5, sampling=SamplingConfig.from_dict({"seed": 1})
    )
    assert response.frames.shape[1:] == (32, 32, 3) and response.frames.dtype == np.uint8
    assert len(response.audio) == round(
        response.frames.shape[0] / response.fps * response.sample_rate
    )


def test_batch_rows_match_single_runs(pipeline, partner_clip):
    # Greedy decoding takes randomness out: each row of a left-padded batch must then generate
    # exactly the codes that the same partner clip generates alone.
    clip = pipeline.read_partner(partner_clip)
    short = type(clip)(clip.frames[:4], clip.audio[:8000], clip.fps, clip.sample_rate, 0.5)
    greedy = {"temperature": 0.0}
    sampling = SamplingConfig.from_dict({"video": greedy, "audio": greedy, "boundary": greedy})
    responses = pipeline.respond_batch(
        [clip, short], [None, None], max_seconds=1.0, sampling=sampling
    )
    assert len(responses) == 2
    for batched, partner in zip(responses, (clip, short)):
        alone = pipeline.respond(partner, max_seconds=1.0, sampling=sampling)
        assert batched.video_codes.shape[1:] == (4, 4)
        assert torch.equal(batched.video_codes, alone.video_codes)
        assert torch.equal(batched.audio_codes, alone.audio_codes)
        np.testing.assert_array_equal(batched.frames, alone.frames)


def test_fit_audio_pads_and_trims():
    audio = np.ones(100, np.float32)
    assert len(fit_audio(audio, 8, 8.0, 80)) == 80
    padded = fit_audio(audio, 16, 8.0, 80)
    assert len(padded) == 160 and padded[100:].sum() == 0


def test_mismatched_tokenizer_is_refused(pipeline):
    from vidchat.errors import VidchatError
    from vidchat.inference.pipeline import ResponderPipeline
    from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer

    other = VQVideoTokenizer(
        VQVideoConfig(
            frame_size=32, fps=8.0, downsample=8, channels=[8, 8, 8], codebook_size=128, code_dim=8
        )
    )
    with pytest.raises(VidchatError, match="video codebook size: checkpoint 64 vs tokenizer 128"):
        ResponderPipeline(pipeline.model, pipeline.layout, other, pipeline.audio_tokenizer)
    assert torch.is_tensor(pipeline.encode_reference(None))


def test_guided_answers_stream_batch_and_read_the_reference_alone(pipeline, partner_clip):
    """`sampling.guidance`: the pipeline supplies each answer's reference-only prompt; at scale
    0 the answer is the one that prompt alone gives, whatever the partner; at scale 3 streaming
    equals one-shot and a batch row equals its single run."""
    from vidchat.model.generate import generate

    clip = pipeline.read_partner(partner_clip)
    zero = SamplingConfig.from_dict({"seed": 2, "guidance": 0.0})
    guided = pipeline.respond(clip, max_seconds=1.0, sampling=zero)
    alone = generate(
        pipeline.model,
        pipeline.layout,
        pipeline.unconditional([None], zero),
        pipeline.max_chunks(1.0),
        SamplingConfig.from_dict({"seed": 2}),
    )
    assert torch.equal(guided.video_codes, alone.video[0])
    three = {
        "guidance": 3.0,
        "video": {"temperature": 0},
        "audio": {"temperature": 0},
        "boundary": {"temperature": 0},
    }
    _streams_like_one_shot(pipeline, clip, SamplingConfig.from_dict(three))
    single = pipeline.respond(clip, max_seconds=1.0, sampling=SamplingConfig.from_dict(three))
    short = type(clip)(
        clip.frames[:4], clip.audio[: len(clip.audio) // 3], clip.fps, clip.sample_rate, 0.5
    )
    rows = pipeline.respond_batch(
        [clip, short], [None, None], max_seconds=1.0, sampling=SamplingConfig.from_dict(three)
    )
    assert torch.equal(rows[0].video_codes, single.video_codes)


def _streams_like_one_shot(pipeline, clip, sampling):
    chunks = list(pipeline.stream(clip, max_seconds=1.0, sampling=sampling))
    whole = pipeline.respond(clip, max_seconds=1.0, sampling=sampling)
    np.testing.assert_array_equal(np.concatenate([c.frames for c in chunks]), whole.frames)


@pytest.mark.parametrize("head", ["flat", "depth"])
def test_a_listening_turn_keeps_every_audio_step_silent(partner_clip, head):
    """`fixed_audio` pins each audio step to the codec's silence codes; video stays free."""
    from tests.tiny_responder import tiny_pipeline
    from vidchat.model.generate import stream_chunks

    pipe = tiny_pipeline(head=head)
    prompt = pipe.prompt(pipe.read_partner(partner_clip))
    silence = pipe.silence_codes()  # [K]
    free = list(stream_chunks(pipe.model, pipe.layout, prompt, 2, SamplingConfig()))
    fixed = list(stream_chunks(pipe.model, pipe.layout, prompt, 2, fixed_audio=silence))
    assert fixed and free
    for chunk in fixed:
        assert torch.equal(chunk.audio[0], silence[:, None].expand_as(chunk.audio[0]))
    assert not all(torch.equal(c.audio[0], silence[:, None].expand_as(c.audio[0])) for c in free)
