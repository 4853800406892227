"""Benchmark: one training step of VidChatLM vs. transformers' LlamaForCausalLM of the same shape.

    python bench/train_step.py [--dim 256] [--layers 4] [--heads 4] [--seq 1024] [--batch 2]
                               [--loss-chunk 1024]

A step = forward, next-token cross entropy, backward, AdamW step. Both models have the same width,
depth, heads, SwiGLU width, vocabulary (the demo layout's) and sequence length; ours also adds its
role and slot embeddings, as in training. Steps alternate between the two models (so a busy
machine slows both alike); the medians are compared. Ours also runs with its chunked output
head + cross-entropy (`model.loss_chunk`), on rows packed from 4 sequences each (block-causal
attention, `stage.batching=pack`), and with `--compile BACKEND` with its blocks compiled
(`model.compile`): their step times, and the peak memory of two steps either way, each measured
in a child process that runs only those steps (CUDA's allocator peak; on CPU the peak RSS, so
both figures include the same interpreter and weights). On a GPU the steps run under bf16
autocast with fused AdamW (`--precision`), and `mfu ours` / `mfu hf` follow the tokens/s; where
liger-kernel is installed, ours also runs with its fused linear + cross-entropy (time and peak).
Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

import torch  # noqa: E402

from vidchat.model import LayoutConfig, ModelConfig, SequenceLayout, VidChatLM  # noqa: E402
from vidchat.training.lm.losses import next_token_nll  # noqa: E402


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--vocab",
        type=int,
        default=0,
        help="vocabulary size (0: the demo layout's; `base` on SpeakerVid: 73735)",
    )
    parser.add_argument(
        "--loss-chunk",
        type=int,
        default=1024,
        help="positions per pass of the chunked output head + cross-entropy",
    )
    parser.add_argument(
        "--compile",
        default=None,
        metavar="BACKEND",
        help="also time ours with its blocks compiled (model.compile=BACKEND)",
    )
    parser.add_argument(
        "--peak-only", choices=["plain", "chunked", "liger"], help=argparse.SUPPRESS
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="bf16: steps under bf16 autocast (as trainer=gpu trains); auto: "
        "bf16 on a GPU, fp32 on a CPU",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    return parser.parse_args()


def _vocab(args: argparse.Namespace) -> tuple[int, int]:
    """(vocabulary size, slots): `--vocab` or the demo tokenizers' layout's, and its slots."""
    layout = SequenceLayout(LayoutConfig(8, (4, 4), 1024, 25, 2, 1024))  # the demo tokenizers
    return args.vocab or layout.vocab.size, layout.num_slots


def _ours(args: argparse.Namespace) -> VidChatLM:
    """Our model of the asked shape, seeded, in training mode on `--device`."""
    vocab, num_slots = _vocab(args)
    cfg = ModelConfig(
        vocab_size=vocab,
        num_slots=num_slots,
        dim=args.dim,
        n_layers=args.layers,
        n_heads=args.heads,
        max_seq_len=args.seq,
    )
    torch.manual_seed(0)
    return VidChatLM(cfg).to(args.device).train()


def _models(args: argparse.Namespace):
    """Ours and `LlamaForCausalLM` with the same shape, in training mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    ours = _ours(args)
    cfg, vocab = ours.cfg, ours.cfg.vocab_size
    hf_cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=args.dim,
        intermediate_size=cfg.ffn_dim,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=args.seq,
        rms_norm_eps=cfg.norm_eps,
    )
    hf = LlamaForCausalLM(hf_cfg).to(args.device).train()
    hf.config.use_cache = False
    return ours, hf


def _time(runs: dict, device: torch.device, warmup: int, repeats: int) -> dict[str, list[float]]:
    """Alternate the runs' steps; milliseconds of each timed step per run."""
    times: dict[str, list[float]] = {name: [] for name in runs}

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(warmup + repeats):
        for name, (step, opt) in runs.items():
            sync()
            t0 = time.perf_counter()
            step(opt)
            sync()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1000)
    return times


def _ours_step(
    ours,
    tokens: torch.Tensor,
    roles: torch.Tensor,
    slots: torch.Tensor,
    chunk,
    documents: torch.Tensor | None = None,
):
    """One training step of ours through `next_token_nll` (the training loss path) with
    `chunk` positions per pass of the output head + cross-entropy (and packed rows'
    `documents`)."""

    def step(opt):
        opt.zero_grad(set_to_none=True)
        with _autocast(tokens.device):
            loss = next_token_nll(
                ours, tokens, tokens, roles, slots, documents=documents, chunk=chunk
            ).mean()
        loss.backward()
        opt.step()

    return step


def _liger_step(ours, tokens: torch.Tensor, roles: torch.Tensor, slots: torch.Tensor):
    """One training step of ours with liger-kernel's fused linear + cross-entropy (Triton, so
    CUDA only) in place of the output head and its loss: the maintained library our chunked
    loss is weighed against."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    loss_fn = LigerFusedLinearCrossEntropyLoss()

    def step(opt):
        opt.zero_grad(set_to_none=True)
        with _autocast(tokens.device):
            hidden = ours.hidden(tokens, roles, slots)[:, :-1]
            loss = loss_fn(
                ours.lm_head.weight, hidden.reshape(-1, hidden.shape[-1]), tokens[:, 1:].reshape(-1)
            )
        loss.backward()
        opt.step()

    return step


def _liger_available(device: torch.device) -> bool:
    import importlib.util

    return device.type == "cuda" and importlib.util.find_spec("liger_kernel") is not None


def _documents(tokens: torch.Tensor, per_row: int) -> torch.Tensor:
    """`[B,L]`: every row packed from `per_row` sequences of equal length."""
    B, L = tokens.shape
    return (torch.arange(L, device=tokens.device) * per_row // L).expand(B, L)


BF16 = False
"""Steps run under bf16 autocast (`--precision`; set once in `main`)."""


def _autocast(device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=BF16)


def _adamw(params) -> torch.optim.AdamW:
    """AdamW as training builds it; fused on a GPU."""
    params = list(params)
    return torch.optim.AdamW(params, lr=1e-4, fused=params[0].is_cuda)


def _add_optional_runs(
    runs: dict, args: argparse.Namespace, ours: VidChatLM, batch: tuple[torch.Tensor, ...], opt
) -> bool:
    """Add liger-kernel's step (where installed; True if it runs) and, with `--compile`, a
    compiled copy of ours (a copy, so that the eager runs stay eager)."""
    liger = _liger_available(batch[0].device)
    if liger:
        try:  # untested off a GPU: one trial step, so that a failure costs only its own lines
            _liger_step(ours, *batch)(opt)
            runs["ours_liger"] = (_liger_step(ours, *batch), opt)
        except Exception as exc:  # noqa: BLE001
            print(f"liger-kernel step failed: {type(exc).__name__}: {exc}")
            liger = False
    if args.compile:
        import copy

        from vidchat.training.lm.runtime import compile_blocks

        twin = copy.deepcopy(ours)
        compile_blocks(twin, args.compile)
        runs["ours_compiled"] = (_ours_step(twin, *batch, None), _adamw(twin.parameters()))
    return liger


def _throughput_lines(
    ours: VidChatLM, args: argparse.Namespace, med: dict[str, float], kind: str
) -> None:
    """Tokens/s of each model and, where the device's peak is known (a GPU in
    `vidchat.training.callbacks`' table), MFU by the 6N estimate (N without the embedding, the
    same for both models, attention left out)."""
    from vidchat.training.callbacks import peak_tflops_for

    n, tokens = ours.num_params(exclude_embeddings=True), args.batch * args.seq
    peak = peak_tflops_for(torch.cuda.get_device_name()) if kind == "cuda" else None
    for name in ("ours", "hf"):
        tps = tokens / (med[name] / 1000)
        print(f"tokens/s {name} {kind}: {tps:.0f}")
        if peak:
            print(f"mfu {name}: {6 * n * tps / (peak * 1e12):.3f}")


def _peak_gib(args: argparse.Namespace, mode: str) -> float:
    """Peak memory (GiB) of two of our training steps, plain or chunked, each in a child process
    of its own (so that nothing this process holds counts; see the docstring)."""
    argv = [a for a in sys.argv[1:] if not a.startswith("--peak-only")]
    out = subprocess.run(
        [sys.executable, __file__, *argv, "--peak-only", mode],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def _peak_here(args: argparse.Namespace, mode: str) -> float:
    device = torch.device(args.device)
    ours = _ours(args)
    tokens = torch.randint(0, ours.cfg.vocab_size, (args.batch, args.seq), device=device)
    opt = _adamw(ours.parameters())
    zeros = torch.zeros_like(tokens)
    if mode == "liger":
        step = _liger_step(ours, tokens, zeros, zeros)
    else:
        step = _ours_step(
            ours, tokens, zeros, zeros, args.loss_chunk if mode == "chunked" else None
        )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        step(opt)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return _peak_rss_kib() / 2**20


def _peak_rss_kib() -> float:
    """This process's peak resident memory (KiB). Linux's VmHWM: `ru_maxrss` would carry the
    parent's peak over the exec that started this child."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main() -> None:
    args = _args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global BF16
    BF16 = args.precision == "bf16" or (args.precision == "auto" and args.device != "cpu")
    if args.peak_only:
        print(f"{_peak_here(args, args.peak_only):.4f}")
        return
    V, num_slots = _vocab(args)
    ours, hf = _models(args)
    device = torch.device(args.device)
    tokens = torch.randint(0, V, (args.batch, args.seq), device=device)
    roles = torch.randint(0, 4, (args.batch, args.seq), device=device)
    slots = torch.randint(0, num_slots, (args.batch, args.seq), device=device)
    step_ours = _ours_step(ours, tokens, roles, slots, None)

    def step_hf(opt):
        opt.zero_grad(set_to_none=True)
        with _autocast(device):
            loss = hf(input_ids=tokens, labels=tokens).loss  # shifts labels inside
        loss.backward()
        opt.step()

    opt_ours = _adamw(ours.parameters())
    runs = {
        "ours": (step_ours, opt_ours),
        "ours_chunked": (_ours_step(ours, tokens, roles, slots, args.loss_chunk), opt_ours),
        "hf": (step_hf, _adamw(hf.parameters())),
        # rows packed from 4 sequences each: block-causal attention under an explicit mask
        "ours_packed": (
            _ours_step(ours, tokens, roles, slots, None, _documents(tokens, 4)),
            opt_ours,
        ),
    }
    liger = _add_optional_runs(runs, args, ours, (tokens, roles, slots), opt_ours)
    times = _time(runs, device, args.warmup, args.repeats)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"device: {args.device}, threads: {torch.get_num_threads()}")
    print(
        f"shape: dim={args.dim} layers={args.layers} heads={args.heads} vocab={V} "
        f"seq={args.seq} batch={args.batch}; params ours={ours.num_params() / 1e6:.2f}M "
        f"hf={sum(p.numel() for p in hf.parameters()) / 1e6:.2f}M"
    )
    for name, t in times.items():
        print(f"{name} step ms: " + " ".join(f"{x:.0f}" for x in t))
    print(f"train step ours ms: {med['ours']:.1f}")
    print(f"train step hf ms: {med['hf']:.1f}")
    print(f"train step ratio ours/hf: {med['ours'] / med['hf']:.3f}")
    kind = "cuda" if device.type == "cuda" else "cpu"
    print(f"train step ours chunked ms: {med['ours_chunked']:.1f}")
    print(f"train step ours packed ms: {med['ours_packed']:.1f}")
    if args.compile:
        print(f"train step ours compiled {args.compile} ms: {med['ours_compiled']:.1f}")
    _throughput_lines(ours, args, med, kind)
    print(f"peak memory GiB ours plain {kind}: {_peak_gib(args, 'plain'):.3f}")
    print(f"peak memory GiB ours chunked {kind}: {_peak_gib(args, 'chunked'):.3f}")
    if liger:
        print(f"train step ours liger ms: {med['ours_liger']:.1f}")
        print(f"peak memory GiB ours liger {kind}: {_peak_gib(args, 'liger'):.3f}")


if __name__ == "__main__":
    main()
