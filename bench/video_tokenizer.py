"""Benchmark: video tokenizer quality against resolution, stride, codebook and temporal stride.

    python bench/video_tokenizer.py [--sizes 64 128 256] [--steps 500] [--threads 1]

For each frame size, trains each variant for the same number of steps (8 frames a step at
64 px, 4 at 128, 2 at 256, which keeps a 256 px run within minutes on a CPU) on demo-world faces
rendered at that size (12 identities, talking and blinking), then measures on 4 held-out
identities and, when the carphone recording is available (fetched by the set-up,
`scripts/fetch_real_media.py`, or `--real PATH`), on a real face cropped and resized to the same size:
PSNR, SSIM, the share of the codebook used and the codes' perplexity.

Variants (all FSQ; `s<N>` = spatial stride, `t<k>` = frames per code frame):
    s8-fsq1k    stride 8, levels [8,5,5,5] (1,000 codes), today's demo grid density
    s16-fsq64k  stride 16, levels [8,8,8,5,5,5] (64,000 codes): the real-resolution tokenizer
    s16-fsq64k-t2  the same, two frames per code frame (causal groups): half the code rate
Codebook use is reported over the held-out codes (at most `frames x codes per frame` distinct
codes can appear, so a 64k codebook cannot be filled by a short test set; perplexity says how
spread the codes are). Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from vidchat.data.demo_world.face import render_face  # noqa: E402
from vidchat.data.demo_world.identities import make_identities  # noqa: E402
from vidchat.data.demo_world.script import face_track  # noqa: E402
from vidchat.tokenizers.video_vq import VQVideoConfig, VQVideoTokenizer  # noqa: E402
from vidchat.training.tokenizers.evaluate import evaluate_video_tokenizer  # noqa: E402
from vidchat.training.tokenizers.modules import VideoTokenizerModule  # noqa: E402

FPS = 8
VARIANTS = {
    "s8-fsq1k": dict(downsample=8, fsq_levels=[8, 5, 5, 5]),
    "s16-fsq64k": dict(downsample=16, fsq_levels=[8, 8, 8, 5, 5, 5]),
    "s16-fsq64k-t2": dict(downsample=16, fsq_levels=[8, 8, 8, 5, 5, 5], temporal_stride=2),
}
CHANNELS = [16, 32, 64, 64]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument(
        "--batch", type=int, default=8, help="frames per step at 64 px (x 64/size at larger sizes)"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--real", default=None, help="a real face video (default: carphone)")
    return parser.parse_args()


def demo_frames(size: int, identities: range, clips: int = 3, frames: int = 16) -> np.ndarray:
    """Talking demo faces `[N, size, size, 3]` uint8, `clips` clips of `frames` per identity
    (consecutive within a clip, so temporal groups never straddle two clips)."""
    people = make_identities(16, seed=1)
    rng = np.random.default_rng([size, identities.start])
    out = []
    for i in identities:
        for _ in range(clips):
            mouth = np.clip(rng.normal(0.4, 0.35, frames), 0, 1)
            emotion = str(rng.choice(["happy", "neutral", "sad"]))
            out.append(render_face(people[i], face_track(rng, frames, FPS, emotion, mouth), size))
    return np.concatenate(out)


def real_frames(size: int, path: str | None, count: int = 32) -> np.ndarray | None:
    """`count` frames of a real face video, centre-cropped square and resized, or None."""
    from vidchat.media import MediaError, centre_square, probe, read_clip

    if path is None:
        try:
            from tests.real_media import carphone_path

            path = str(carphone_path())
        except Exception as exc:  # noqa: BLE001 - offline or not a checkout: skip the real rows
            print(f"# real recording unavailable ({exc}); demo faces only")
            return None
    try:
        info = probe(path)
        box = centre_square(info.width, info.height)
        clip = read_clip(path, fps=FPS, size=size, bbox=box, require_audio=False)
    except MediaError as exc:
        print(f"# {exc}; demo faces only")
        return None
    return clip.frames[: count // 4 * 4]


def train(cfg: VQVideoConfig, frames: np.ndarray, steps: int, batch: int) -> VQVideoTokenizer:
    """The stage's loss and schedule (`VideoTokenizerModule`), in a plain loop."""
    torch.manual_seed(0)
    tok = VQVideoTokenizer(cfg)
    module = VideoTokenizerModule(tok, lr=2e-3, warmup_steps=20, max_steps=steps)
    opt = module.configure_optimizers()
    optimizer, scheduler = opt["optimizer"], opt["lr_scheduler"]["scheduler"]
    k = cfg.temporal_stride
    groups = torch.from_numpy(frames).reshape(-1, k, *frames.shape[1:])  # [N/k,k,H,W,3]
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        pick = torch.randint(0, len(groups), (max(1, batch // k),), generator=gen)
        loss, _ = module.loss(groups[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    return tok.eval()


def measure(tok: VQVideoTokenizer, frames: np.ndarray) -> dict[str, float]:
    m = evaluate_video_tokenizer(tok, frames)
    return {
        "psnr": m["psnr_db"],
        "ssim": m["ssim"],
        "used": m["codes_used"],
        "perplexity": m["perplexity"],
    }


def run_size(size: int, args: argparse.Namespace) -> list[tuple[str, str, dict[str, float]]]:
    """Train every variant at `size` px; -> rows (variant, test set, metrics)."""
    train_frames = demo_frames(size, range(0, 12))
    test_sets = {"demo": demo_frames(size, range(12, 16))}
    real = real_frames(size, args.real)
    if real is not None:
        test_sets["real"] = real
    rows = []
    for name in args.variants:
        cfg = VQVideoConfig(
            frame_size=size,
            fps=FPS,
            channels=CHANNELS[: _stages(name)],
            quantizer="fsq",
            **VARIANTS[name],
        )
        started = time.perf_counter()
        tok = train(cfg, train_frames, args.steps, max(2, args.batch * 64 // size))
        took = time.perf_counter() - started
        grid = size // cfg.downsample
        for test, frames in test_sets.items():
            metrics = measure(tok, frames)
            rows.append((name, test, metrics))
            print(
                f"{size}px {name:14s} {test:4s} grid {grid}x{grid}/{cfg.temporal_stride} "
                f"psnr {metrics['psnr']:.2f} ssim {metrics['ssim']:.3f} "
                f"used {metrics['used']:.4f} ppl {metrics['perplexity']:.0f} "
                f"(trained {took:.0f} s)",
                flush=True,
            )
    return rows


def _stages(name: str) -> int:
    return int(np.log2(VARIANTS[name]["downsample"]))


def main() -> None:
    args = _args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {args.steps} steps per variant ({args.batch} frames a step at 64 px); FSQ; fps {FPS}")
    results = {size: run_size(size, args) for size in args.sizes}
    for size, rows in results.items():
        for name, test, m in rows:
            for key in ("psnr", "ssim", "used"):
                print(f"{key} {name} {test} {size}px: {m[key]:.4f}")


if __name__ == "__main__":
    main()
