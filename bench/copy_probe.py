"""Diagnostic (no timing): where a frame changes, does a frame-head LM expect the change?

    python bench/copy_probe.py --checkpoint checkpoints/sft6/lm [--examples 400] \
        -- experiment=demo64 stage=sft data.root=data_cache/demo64_384 ...

On the training dialogue pairs of the given config, teacher-forced with every code of a frame
hidden (generation's first refinement pass), this averages over the responder's frames, at the
positions whose code differs from the frame it follows (the reference, for a turn's first frame):
the probability the LM gives the true code and the probability it gives the code it would copy.
When the copy wins by far, sampling keeps the frame before, and an expression that the first
frame should take from the partner never appears. Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from vidchat.cli import compose  # noqa: E402
from vidchat.data.lm_dataset import item_row  # noqa: E402
from vidchat.errors import VidchatError  # noqa: E402
from vidchat.model.checkpoint import load_consolidated  # noqa: E402
from vidchat.model.frame_links import previous_frames  # noqa: E402
from vidchat.model.vocab import Modality, Role  # noqa: E402
from vidchat.training.lm_data import prepare_data  # noqa: E402
from vidchat.training.lm_stage import lm_job  # noqa: E402


def frame_changes(model, row: dict[str, torch.Tensor], size: int) -> list[tuple]:
    """Per responder frame of one sequence: (turn frame index, mean P(true code), mean P(copied
    code) over the positions where the two differ, how many differ)."""
    b = {k: v[None] for k, v in row.items()}
    with torch.no_grad():
        logits = model(b["tokens"], b["roles"], b["next_slots"], depth=b["depth"],
                       modality=b["modality"], frame_mask=torch.ones_like(b["valid"]))[0]  # fmt: skip
    probs = logits.float().softmax(-1)  # [L,V]: position t predicts token t+1
    tokens, links = b["tokens"][0], previous_frames(b["roles"], b["modality"], b["depth"])[0]
    video_starts = (b["modality"][0] == int(Modality.VIDEO)) & (b["depth"][0] == 0)
    starts = (video_starts & (b["roles"][0] == int(Role.RESPONDER))).nonzero()[:, 0].tolist()
    out = []
    for k, s in enumerate(starts):
        p = int(links[s])
        if p < 0 or s + size > len(tokens):
            continue
        true, copied = tokens[s : s + size], tokens[p : p + size]
        where = (true != copied).nonzero()[:, 0]
        if len(where):
            at = s - 1 + where
            p_true, p_copy = probs[at, true[where]].mean(), probs[at, copied[where]].mean()
            out.append((k, float(p_true), float(p_copy), len(where)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="a consolidated LM export")
    parser.add_argument("--examples", type=int, default=400, help="training examples to read")
    parser.add_argument("overrides", nargs="*", help="train.py overrides naming the data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    job, _ = lm_job(compose("train", args.overrides))
    data = prepare_data(job)
    model, layout, _ = load_consolidated(args.checkpoint)
    if model.frame_head is None:
        raise SystemExit(f"error: {args.checkpoint} has no frame head (layout.video_head=maskgit)")
    size = layout.h * layout.w
    first, later = [], []
    for i in range(min(args.examples, len(data.train))):
        for k, *measured in frame_changes(model, item_row(data.train[i]), size):
            (first if k == 0 else later).append(measured)
    for name, rows in (("first_frame", first), ("later_frames", later)):
        p_true, p_copy, changed = np.mean(rows, axis=0) if rows else [float("nan")] * 3
        print(f"{name} frames: {len(rows)}")
        print(f"changed_codes {name}: {changed:.1f} of {size}")
        print(f"p_true {name}: {p_true:.3f}")
        print(f"p_copy {name}: {p_copy:.3f}")


if __name__ == "__main__":
    try:
        main()
    except VidchatError as exc:  # a missing checkpoint or data: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
