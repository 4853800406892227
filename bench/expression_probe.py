"""Diagnostic (no timing): does the LM's frame input keep what a face's expression is?

    python bench/expression_probe.py --shards data_cache/tokens/demo384-demo64 \
        [--checkpoint checkpoints/sft6/lm ...] [--dims 192]

A backbone step of a frame head sees a video frame as the sum of its codes' embeddings. Whatever
that sum loses, the backbone cannot read from the partner, however it attends. This fits a
linear classifier of the demo world's emotion label (happy, neutral, sad) to each talking clip's
frames, held out by conversation (every fourth conversation is the test set), from:

- `codes`: the clip's bag of codes (how often each code occurs per frame), the information the
  summed input could keep at best;
- `random`: that bag through a random `dims`-wide projection, what an untrained embedding keeps;
- each checkpoint: that bag through the LM's own video-code embeddings (the summed input less
  its constant slot part).

Ends with `probe <name>: <held-out accuracy>` lines (chance is about 0.33).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from vidchat.data.demo_world.speech import EMOTIONS  # noqa: E402
from vidchat.data.shards import ShardReader  # noqa: E402
from vidchat.errors import VidchatError  # noqa: E402
from vidchat.model.checkpoint import load_consolidated  # noqa: E402


def code_bags(
    reader: ShardReader, codebook_size: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """-> bags `[N,V]` (code counts per frame), labels `[N]`, conversation of each `[N]`."""
    bags, labels, conversations = [], [], []
    for clip_id in reader.ids():
        clip = reader[clip_id]
        meta = clip.meta.get("labels", {})
        if meta.get("listener") or meta.get("emotion") not in EMOTIONS or not len(clip.video):
            continue
        counts = np.bincount(clip.video.reshape(-1).astype(np.int64), minlength=codebook_size)
        bags.append(counts[:codebook_size] / len(clip.video))
        labels.append(EMOTIONS.index(meta["emotion"]))
        conversations.append(str(meta.get("conversation", clip_id)))
    if not bags:
        raise SystemExit(f"error: {reader.roots[0]} holds no talking clips with an emotion label")
    return (
        torch.tensor(np.array(bags), dtype=torch.float32),
        torch.tensor(labels),
        np.array(conversations),
    )


def held_out_accuracy(
    x: torch.Tensor, y: torch.Tensor, train: torch.Tensor, classes: int = len(EMOTIONS)
) -> float:
    """Fit a weight-decayed softmax classifier of `classes` labels on `x[train]`
    (standardised), score the rest."""
    if train.sum() < 2 or train.all():
        raise SystemExit(
            f"error: {int(train.sum())} examples to fit and {int((~train).sum())} "
            "held out: too few conversations for a probe (need 2+ to fit, 1+ held out)"
        )
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mu) / sd
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=0.02)
    for _ in range(500):
        opt.zero_grad()
        logits = x[train] @ weight + bias
        loss = torch.nn.functional.cross_entropy(logits, y[train]) + 1e-3 * weight.square().sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(((x[~train] @ weight + bias).argmax(1) == y[~train]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shards", required=True, help="a token shard set of the demo world")
    parser.add_argument("--checkpoint", nargs="*", default=[], help="consolidated LM exports")
    parser.add_argument("--dims", type=int, default=192, help="width of the random projection")
    args = parser.parse_args()
    if not Path(args.shards).is_dir():
        raise SystemExit(f"error: {args.shards}: no such shard set (run stage=tokenize first)")
    torch.manual_seed(0)
    reader = ShardReader(args.shards)
    size = int(reader.meta.get("video_spec", {}).get("codebook_size", 1024))
    bags, labels, conversations = code_bags(reader, size)
    order = {c: i for i, c in enumerate(sorted(set(conversations)))}
    train = torch.tensor([order[c] % 4 != 0 for c in conversations])
    print(f"{len(labels)} talking clips, {int(train.sum())} to fit, {int((~train).sum())} held out")
    results = {
        "codes": held_out_accuracy(bags, labels, train),
        "random": held_out_accuracy(bags @ torch.randn(size, args.dims), labels, train),
    }
    for path in args.checkpoint:
        model, layout, _ = load_consolidated(path)
        lo, hi = layout.vocab.video_range
        embedding = model.embed_tokens.weight[lo:hi].detach()  # [V,D]
        results[Path(path).parent.name or path] = held_out_accuracy(bags @ embedding, labels, train)
    for name, value in results.items():
        print(f"probe {name}: {value:.2f}")


if __name__ == "__main__":
    try:
        main()
    except VidchatError as exc:  # a broken shard set or checkpoint: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
