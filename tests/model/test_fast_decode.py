"""The fast decode path (#32): static-shape steps on the `KVCache`, compiled once by
`torch.compile(fullgraph=True)` and replayed, must give the eager path's tokens for every head,
greedy and seeded; and nothing inside a chunk may read a tensor back to the host."""

from __future__ import annotations

import collections

import pytest
import torch
from conftest import demo_layout
from test_depth import GREEDY, depth_model, prompts
from torch.utils._python_dispatch import TorchDispatchMode

from vidchat.errors import ConfigError
from vidchat.model.frame_links import previous_frames
from vidchat.model.generate import SamplingConfig, generate, stream_chunks
from vidchat.model.heads.maskgit import MaskGITHead
from vidchat.model.runner import EAGER, StepRunner, cache_length

pytestmark = pytest.mark.timeout(300)

# every kind of head (flat and depth as video and as audio heads; the frame head beside both)
HEADS = [("flat", "flat"), ("depth", "depth"), ("maskgit", "depth"), ("maskgit", "flat")]
SEEDED = SamplingConfig(seed=3)


def model_and_prompts(video: str, audio: str, seed: int = 0):
    layout = demo_layout(video_head=video, audio_head=audio)
    return (
        layout,
        depth_model(layout, seed=seed).eval(),
        prompts(layout, torch.Generator().manual_seed(0)),
    )


@pytest.mark.parametrize("heads", HEADS, ids=lambda h: f"video_{h[0]}-audio_{h[1]}")
def test_compiled_steps_give_the_eager_tokens(heads):
    """`aot_eager` traces every step whole (`fullgraph`: a graph break would be an error) and
    runs the traced graph: same tokens as eager, greedy and seeded, over two chunks of a
    left-padded batch."""
    layout, model, ps = model_and_prompts(*heads)
    fast = StepRunner("aot_eager")
    for sampling in (GREEDY, SEEDED):
        want = generate(model, layout, ps, max_chunks=2, sampling=sampling)
        got = generate(model, layout, ps, max_chunks=2, sampling=sampling, runner=fast)
        assert torch.equal(got.tokens, want.tokens), sampling
    assert fast._compiled and all(f.__name__ != "first" for f in fast._compiled.values())


def test_inductor_on_cpu_gives_the_eager_tokens():
    """The real compiler (C++ kernels on this CPU) on the demo layout's heads (a cold compile
    costs about a minute, so one sampling setting)."""
    layout, model, ps = model_and_prompts("maskgit", "depth")
    want = generate(model, layout, ps, max_chunks=2, sampling=SEEDED)
    got = generate(model, layout, ps, max_chunks=2, sampling=SEEDED, runner=StepRunner("inductor"))
    assert torch.equal(got.tokens, want.tokens)


def test_guided_compiled_steps_give_the_eager_tokens():
    """With guidance a frame head's rows double (conditional, then unconditional)."""
    layout, model, ps = model_and_prompts("maskgit", "depth")
    sampling = SamplingConfig(seed=4, guidance=3.0)
    uncond = [layout.prompt([], ref=p.tokens.new_zeros(4, 4)) for p in ps]
    want = generate(model, layout, ps, max_chunks=2, sampling=sampling, unconditional=uncond)
    got = generate(
        model,
        layout,
        ps,
        max_chunks=2,
        sampling=sampling,
        unconditional=uncond,
        runner=StepRunner("aot_eager"),
    )
    assert torch.equal(got.tokens, want.tokens)


class HostReads(TorchDispatchMode):
    """Counts the ops that read a tensor back to the host (a device sync on a GPU)."""

    OPS = {
        "aten._local_scalar_dense.default",
        "aten.item.default",
        "aten.is_nonzero.default",
        "aten.nonzero.default",
        "aten._unique2.default",
        "aten.unique_dim.default",
    }

    def __init__(self) -> None:
        super().__init__()
        self.reads: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if str(func) in self.OPS:
            self.reads[str(func)] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("heads", HEADS, ids=lambda h: f"video_{h[0]}-audio_{h[1]}")
def test_no_host_read_inside_a_chunk(heads):
    """After the prompt (chunk 0 includes the prefill's setup), a chunk reads at most one value
    back: whether every row chose `<eot>` at its boundary."""
    layout, model, ps = model_and_prompts(*heads)
    for seed in range(8):  # an untrained model may end early: find a seed that goes on
        per_chunk = host_reads_per_chunk(model, layout, ps, SamplingConfig(seed=seed))
        if len(per_chunk) >= 3:
            break
    assert len(per_chunk) >= 3 and max(per_chunk[1:]) <= 1, per_chunk
    assert per_chunk[0] >= 1  # the counter sees host reads (the prefill's)


def host_reads_per_chunk(model, layout, ps, sampling) -> list[int]:
    chunks = stream_chunks(model, layout, ps, max_chunks=4, sampling=sampling)
    per_chunk = []
    with torch.inference_mode():
        for _ in range(4):
            with HostReads() as mode:
                if next(chunks, None) is None:
                    break
            per_chunk.append(sum(mode.reads.values()))
    return per_chunk


class Reads(torch.nn.Module):
    def step(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.sum().item() > 0 else x  # a host read and a data-dependent branch

    def plain(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def test_a_step_that_reads_the_host_is_refused_and_the_runner_turns_eager():
    """`fullgraph` makes a host read inside a step a capture error. Before any compiled step
    has run, the runner warns once and decodes eagerly from then on."""
    runner, m = StepRunner("aot_eager"), Reads()
    with pytest.warns(RuntimeWarning, match="step could not be compiled"):
        assert torch.equal(runner(m.step)(torch.ones(2)), torch.full((2,), 2.0))
    assert not runner.compiled and runner(m.plain).__func__ is Reads.plain


def test_a_step_that_fails_after_compiled_steps_ran_is_an_error():
    """Mixing compiled and eager steps in one generation would desynchronise the caches'
    bookkeeping: a late failure says what to do instead."""
    from vidchat.errors import VidchatError

    runner, m = StepRunner("aot_eager"), Reads()
    assert torch.equal(runner(m.plain)(torch.ones(2)), torch.full((2,), 2.0))
    with pytest.raises(VidchatError, match="--decode eager"):
        runner(m.step)(torch.ones(2))


def test_the_copy_path_follows_the_frame_the_training_rule_names(monkeypatch):
    """Generation keeps `History.follows` as it goes; at every generated frame it must be the
    frame that `previous_frames` (the rule training uses) finds in the whole history."""
    layout, model, ps = model_and_prompts("maskgit", "depth")
    checked = []
    original = MaskGITHead.previous

    def previous(self, history, size):
        h = history
        links = previous_frames(h.roles, h.modality, h.depth, h.valid)[:, -1]
        T = h.tokens.shape[1]
        assert torch.equal(torch.where(links >= 0, links % T, -1), h.follows)
        checked.append(int(h.follows.max()))
        return original(self, history, size)

    monkeypatch.setattr(MaskGITHead, "previous", previous)
    generate(model, layout, ps, max_chunks=2, sampling=SEEDED)
    assert len(checked) >= 8 and len(set(checked)) == len(checked)  # each frame follows a new one


def test_runner_choices_and_errors():
    assert not StepRunner.for_device("auto", "cpu").compiled
    assert StepRunner.for_device("auto", "cuda").mode == "reduce-overhead"
    assert StepRunner.for_device("fast", "cpu").backend == "inductor"
    assert EAGER(test_runner_choices_and_errors) is test_runner_choices_and_errors
    with pytest.raises(ConfigError, match="--decode must be one of"):
        StepRunner.for_device("turbo", "cpu")
    with pytest.raises(ConfigError, match="not a torch.compile backend"):
        StepRunner("no-such-backend")
    assert [cache_length(n, 4096) for n in (1, 256, 257, 5000)] == [256, 256, 512, 4096]


def test_a_compiled_runner_reuses_its_caches():
    """Captured steps replay on the same buffers from one answer to the next."""
    layout, model, ps = model_and_prompts("maskgit", "depth")
    fast = StepRunner("aot_eager")
    a = generate(model, layout, ps, max_chunks=1, sampling=SEEDED, runner=fast)
    buffers = {id(c.k) for c in fast._caches.values()}
    b = generate(model, layout, ps, max_chunks=1, sampling=SEEDED, runner=fast)
    assert torch.equal(a.tokens, b.tokens) and {id(c.k) for c in fast._caches.values()} == buffers
    assert len(fast._caches) == 2  # the backbone's and the audio depth head's


def test_another_prompt_length_replays_without_recompiling():
    """Slices of the growing sequence are handed to the steps with standard strides and the
    caches come in buckets of 256 positions, so a prompt of another length (one row, as
    `infer.py` runs) replays the steps compiled for the first."""
    layout, model, ps = model_and_prompts("maskgit", "depth")
    fast = StepRunner("aot_eager")
    generate(model, layout, ps[:1], max_chunks=1, sampling=SEEDED, runner=fast)
    import torch._dynamo

    want = generate(model, layout, ps[1:], max_chunks=1, sampling=SEEDED)
    # (monkeypatch would delete the config key on undo: the config's own patch restores it)
    with torch._dynamo.config.patch(error_on_recompile=True):
        got = generate(model, layout, ps[1:], max_chunks=1, sampling=SEEDED, runner=fast)
    assert ps[0].tokens.shape != ps[1].tokens.shape and torch.equal(got.tokens, want.tokens)


def test_a_replayed_step_hands_out_its_own_copy(monkeypatch):
    """With CUDA graphs each call marks a new graph generation and clones its output out of
    the graph's pool (checked here without CUDA: the wrapper's contract)."""
    from vidchat.model import runner as runner_module

    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    pool = torch.zeros(3)
    step = runner_module.replayed(lambda x: pool.add_(x))
    out = step(torch.ones(3))
    pool.fill_(7)  # the next replay overwrites the pool
    assert marks == [1] and torch.equal(out, torch.ones(3))
