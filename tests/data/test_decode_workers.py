"""Decode workers never hang a tokenize run: they are not forks of the run, they decode with one
FFmpeg thread, many of them beside many torch threads finish, and a worker that makes no progress
ends the run with one error naming the clip.

On the 16-core GPU machine `stage=tokenize` once sat at 0 clips forever, its main thread waiting
in the DataLoader; the same run does not hang on this 2-core machine, so the tests check the
conditions that ruled it out, and the bound that ends any hang that is left."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from decode_helpers import StallsOnClip2, WorkerFacts, light_records
from test_shards import NAMES, make_tiny_tokenizers, stage_cfg, toy_shard_dir

import vidchat.training.tokenize.stage as tokenize_module
from vidchat.data.decode import DecodeDataset, DecodeStalled, decode_in_workers
from vidchat.data.shards import ShardReader
from vidchat.errors import VidchatError
from vidchat.tokenizers.codec import encode_frames
from vidchat.training.tokenize.stage import tokenize_records

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def tiny_tokenizers():
    return make_tiny_tokenizers()


def test_workers_are_not_forks_of_the_run_and_decode_with_one_thread(tmp_path):
    records = light_records(tmp_path, n=3)
    facts = [
        eval(error)
        for _, _, _, error in decode_in_workers(  # noqa: S307 - our own repr of a dict
            WorkerFacts(records, 8, (16, 16), 16000), 2, timeout=60
        )
    ]
    assert len(facts) == len(records)
    for fact in facts:
        assert fact["parent"] != os.getpid()  # started by the forkserver, not forked from the run
        assert fact["decode_threads"] == 1 and fact["torch_threads"] == 1


def test_many_workers_beside_many_torch_threads_finish(tmp_path, tiny_tokenizers):
    """8 workers while the run itself holds 16 torch threads (the GPU machine's shape)."""
    video, audio = tiny_tokenizers
    records = light_records(tmp_path, n=12)
    threads = torch.get_num_threads()
    torch.set_num_threads(16)
    try:
        encode_frames(video, np.zeros((4, 16, 16, 3), np.uint8))  # the run's pool is warm
        summary = tokenize_records(
            toy_shard_dir(tmp_path),
            stage_cfg(tmp_path, num_workers=8),
            records,
            video,
            audio,
            names=NAMES,
        )
    finally:
        torch.set_num_threads(threads)
    assert summary["clips_tokenized"] == 12 and summary["clips_failed_total"] == 0
    assert len(ShardReader(toy_shard_dir(tmp_path))) == 12


def test_a_stalled_worker_ends_the_run_with_an_error_naming_its_clip(
    tmp_path, tiny_tokenizers, monkeypatch
):
    video, audio = tiny_tokenizers
    records = light_records(tmp_path, n=5)
    monkeypatch.setattr(tokenize_module, "DecodeDataset", StallsOnClip2)
    # the bound includes the workers' start (a few seconds on a loaded 2-core machine)
    stage = stage_cfg(tmp_path, num_workers=2, decode_timeout=12, clips_per_shard=10)  # buffered
    start = time.monotonic()
    with pytest.raises(VidchatError) as info:
        tokenize_records(toy_shard_dir(tmp_path), stage, records, video, audio, names=NAMES)
    assert time.monotonic() - start < 60
    message = str(info.value)
    assert "no clip decoded for 12 s" in message and "clip clip2 (" in message
    assert str(records[2].path) in message and "\n" not in message
    assert not isinstance(info.value, DecodeStalled)  # the run's error, not the worker's
    assert ShardReader(toy_shard_dir(tmp_path)).ids() == ["clip0", "clip1"]  # committed for a rerun


def test_decode_in_workers_keeps_order_like_decoding_inline(tmp_path):
    records = light_records(tmp_path, n=4)
    dataset = DecodeDataset(records, 8, (16, 16), 16000)
    in_workers = list(decode_in_workers(dataset, 3, timeout=60))
    inline = list(decode_in_workers(dataset, 0, timeout=60))
    assert [i for i, *_ in in_workers] == [i for i, *_ in inline] == list(range(len(records)))
    for (_, frames, audio, error), (_, frames0, audio0, error0) in zip(in_workers, inline):
        assert error is None and error0 is None
        assert np.array_equal(frames, frames0) and np.array_equal(audio, audio0)
