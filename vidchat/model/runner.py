"""How generation runs its static-shape steps: eagerly, or compiled once and replayed.

Generation (`vidchat.model.steppers`) calls a handful of pure, static-shape step functions per
token: the backbone's decode step (`VidChatLM.decode_step` / `decode_token`), a depth head's
code step, a frame head's refinement pass. Sampling, which draws from a `torch.Generator`, stays
between them, so a compiled run draws exactly what an eager one does.

`StepRunner()` (eager) calls them as they are: the reference. `StepRunner(backend="inductor")`
wraps each with `torch.compile(fullgraph=True, dynamic=False)` the first time it runs and
replays that afterwards; `fullgraph` makes a host synchronisation or a data-dependent branch
inside a step an error rather than a silent graph break. With `mode="reduce-overhead"` on CUDA,
inductor captures each step as a CUDA graph; the caches then come from a pool
(`cache`), so that a graph replays on the same buffers from one answer to the next.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from vidchat.errors import ConfigError, VidchatError
from vidchat.model.kv_cache import KVCache

DECODE_CHOICES = ("eager", "fast", "auto")
"""`--decode` values: `fast` compiles the steps (`mode=reduce-overhead` on CUDA: CUDA graphs),
`auto` is `fast` on CUDA and `eager` on a CPU (where compiling takes longer than one answer)."""


class StepRunner:
    """Runs static-shape step functions eagerly (`backend=None`) or compiled (see the module
    docstring). One runner belongs to one loaded model: it keeps the compiled steps and the
    pooled caches for the model's lifetime."""

    def __init__(self, backend: str | None = None, mode: str | None = None) -> None:
        if backend is not None:
            check_backend(backend, "the decode steps' backend")
            # a step compiles once per shape it meets (batch size, guidance's doubled rows,
            # each head's width): more than dynamo's default 8 in a long benchmark or server
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        self.backend, self.mode = backend, mode
        self._compiled: dict[tuple[int, str], Callable] = {}
        self._ran_compiled = False
        self._caches: dict[tuple, KVCache] = {}

    @classmethod
    def for_device(cls, decode: str, device: torch.device | str) -> StepRunner:
        """The runner `--decode` names (`DECODE_CHOICES`) on `device`."""
        if decode not in DECODE_CHOICES:
            raise ConfigError(
                f"--decode must be one of {', '.join(DECODE_CHOICES)}, got {decode!r}"
            )
        cuda = torch.device(device).type == "cuda"
        if decode == "eager" or (decode == "auto" and not cuda):
            return cls()
        return cls("inductor", "reduce-overhead" if cuda else None)

    @property
    def compiled(self) -> bool:
        return self.backend is not None

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """`x` as a compiled step should get it: a copy with the standard strides of its shape
        (a compiled step is specialised to its inputs' strides, which a slice of the growing
        sequence, or of the prefill's output, would change from one answer to the next); eager
        steps take `x` as it is."""
        return x.clone(memory_format=torch.contiguous_format) if self.compiled else x

    def __call__(self, step: Callable) -> Callable:
        """`step` (a bound method of a module) as this runner runs it."""
        if self.backend is None:
            return step
        key = (id(step.__self__), step.__func__.__name__)
        if key not in self._compiled:
            compiled = torch.compile(
                step, fullgraph=True, dynamic=False, backend=self.backend, mode=self.mode
            )
            if self.mode == "reduce-overhead":
                compiled = replayed(compiled)
            self._compiled[key] = self._first_call_guard(key, step, compiled)
        return self._compiled[key]

    def _first_call_guard(
        self, key: tuple[int, str], step: Callable, compiled: Callable
    ) -> Callable:
        """`compiled`, except when its first call fails to compile (a step that cannot be
        captured whole, a compiler missing on this machine). Before any compiled step has run,
        the runner then turns eager for every step, with one warning: compilation fails before
        the step runs, so nothing ran twice. After that, the failure is raised rather than
        hidden: steps compiled before, so it is not a missing compiler but a new shape or a
        bug, which a user should see (and can avoid with `--decode eager`)."""

        def first(*args: Any, **kwargs: Any) -> Any:
            try:
                out = compiled(*args, **kwargs)
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                if self._ran_compiled:
                    raise VidchatError(
                        f"decode step {key[1]} could not be compiled ({reason}); "
                        "decode eagerly (--decode eager)"
                    ) from exc
                warnings.warn(
                    f"decode step {key[1]} could not be compiled ({reason}); decoding eagerly",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.backend, self.mode = None, None
                self._compiled.clear()
                return step(*args, **kwargs)
            self._ran_compiled = True
            self._compiled[key] = compiled
            return out

        return first

    def cache(self, new: Callable[..., KVCache], owner: Any, batch: int, length: int) -> KVCache:
        """A cache from `new(batch, length)`; a compiled runner reuses (empties) the one
        it made before for the same owner and shape, so that captured steps see the same
        buffers."""
        if not self.compiled:
            return new(batch, length)
        key = (id(owner), batch, length)
        cache = self._caches.get(key)
        if cache is None:
            cache = self._caches[key] = new(batch, length)
            for buffer in cache.buffers():
                torch._dynamo.mark_static_address(buffer)
        cache.reset(decoding=False)
        return cache


def replayed(compiled: Callable) -> Callable:
    """A CUDA-graph step as gpt-fast calls one: each call starts a new graph generation and
    its output is cloned out of the graph's memory pool, so that the next replay (of this step
    or another) cannot overwrite a tensor generation still holds (the backbone's state, say,
    which the heads read after the next step has run)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        torch.compiler.cudagraph_mark_step_begin()
        out = compiled(*args, **kwargs)
        return out.clone() if isinstance(out, torch.Tensor) else out

    return call


def check_backend(backend: str, option: str) -> None:
    """Raise `ConfigError` naming `option` unless `torch.compile` knows `backend` (debug
    backends such as `aot_eager` included)."""
    import torch._dynamo  # only compiled runs need it (a slow import)

    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:
        raise ConfigError(
            f"{option}={backend!r} is not a torch.compile backend; known: {sorted(known)}"
        )


EAGER = StepRunner()
"""The reference runner."""


def cache_length(needed: int, limit: int, bucket: int = 256) -> int:
    """A cache's length: `needed` positions rounded up to a multiple of `bucket` (at most
    `limit`), so that prompts of similar length share one compiled step."""
    return min(limit, -(-needed // bucket) * bucket)
