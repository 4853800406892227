"""Diagnostic (no timing): where a frame changes, does a frame-head LM expect the change?

    python bench/copy_probe.py --checkpoint checkpoints/sft6/lm [--examples 400] \
        -- experiment=demo64 stage=sft data.root=data_cache/demo64_384 ...

On the training dialogue pairs of the given config, teacher-forced with every code of a frame
hidden (generation's first refinement pass), this averages over the responder's frames, at the
positions whose code differs from the frame it follows (the reference, for a turn's first frame):
the probability the LM gives the true code and the probability it gives the code it would copy.
When the copy wins by far, sampling keeps the frame before, and an expression that the first
frame should take from the partner never appears.

Where the manifest labels each clip's emotion (the demo world), the answer's first frame (the
last responder turn's, the frame the expression must come from) is also split by the answer's
emotion and into parts of its codes: a model that reads the partner's expression gives a smiling
answer's mouth codes more than a neutral one's. The parts depend on the video kind
(`vidchat.eval.metrics.partner.code_parts`): for the VQ, whose codes are places in the frame, the
cells of the demo face's mouth box and the rest; for the motion kind, whose N codes each describe
the whole face, each code on its own (`code0` ...), since none is the mouth. Ends with
`name: value` lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from vidchat.cli import compose  # noqa: E402
from vidchat.data.demo_world.face import MOUTH_BOX  # noqa: E402
from vidchat.data.lm_dataset import item_row  # noqa: E402
from vidchat.data.manifest import load_manifest  # noqa: E402
from vidchat.errors import VidchatError  # noqa: E402
from vidchat.eval.metrics.partner import code_parts  # noqa: E402
from vidchat.inference.loading import load_pipeline  # noqa: E402
from vidchat.model.frame_links import previous_frames  # noqa: E402
from vidchat.model.vocab import Modality, Role  # noqa: E402
from vidchat.training.lm.data import prepare_data  # noqa: E402
from vidchat.training.lm.entry import lm_job  # noqa: E402


class Frames(NamedTuple):
    """One sequence teacher-forced with every frame code hidden."""

    probs: torch.Tensor  # [L,V] next-token probabilities: position t predicts token t+1
    tokens: torch.Tensor  # [L]
    links: torch.Tensor  # [L] each frame start's previous-frame start (-1: none)
    starts: list[int]  # the responder's frame starts
    segment: torch.Tensor  # [L] segment index of each token


def responder_frames(model, row: dict[str, torch.Tensor]) -> Frames:
    """The model's one forward pass over `row`, with what both reports read from it."""
    b = {k: v[None] for k, v in row.items()}
    with torch.no_grad():
        # no head inputs: the frame head guesses every code, as its first pass does
        logits = model(
            b["tokens"], b["roles"], b["next_slots"], depth=b["depth"], modality=b["modality"]
        )[0]
    probs = logits.float().softmax(-1)  # [L,V]: position t predicts token t+1
    tokens, links = b["tokens"][0], previous_frames(b["roles"], b["modality"], b["depth"])[0]
    video_starts = (b["modality"][0] == int(Modality.VIDEO)) & (b["depth"][0] == 0)
    starts = (video_starts & (b["roles"][0] == int(Role.RESPONDER))).nonzero()[:, 0].tolist()
    return Frames(probs, tokens, links, starts, row["segment"])


def frame_changes(frames: Frames, size: int) -> list[tuple]:
    """Per responder frame of one sequence: (turn frame index, mean P(true code), mean P(copied
    code) over the positions where the two differ, how many differ)."""
    probs, tokens, links, starts, _ = frames
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


def answer_first_frame(frames: Frames, parts: dict[str, torch.Tensor]) -> dict:
    """At the first frame of the sequence's last responder turn, per part of its codes
    (`code_parts`: `mouth` and `rest`, or one part per motion code): codes that differ from the
    frame it follows, and where they differ the mean P(true code) and P(copied code)."""
    probs, tokens, links, starts, segment = frames
    if not starts:
        return {}
    s = next(t for t in starts if segment[t] == segment[starts[-1]])
    size = len(next(iter(parts.values())))
    if links[s] < 0 or s + size > len(tokens):  # no frame to follow, or cut by max_seq_len
        return {}
    true, copied = tokens[s : s + size], tokens[links[s] : links[s] + size]
    at = s - 1 + torch.arange(size)
    out = {}
    for part, sel in parts.items():
        d = sel & (true != copied)
        out[f"changed {part}"] = float(d.sum())
        if d.any():
            out[f"p_true {part}"] = float(probs[at[d], true[d]].mean())
            out[f"p_copy {part}"] = float(probs[at[d], copied[d]].mean())
    return out


def report_changes(first: list, later: list, size: int) -> None:
    """`name: value` lines of `frame_changes`, for turns' first frames and later ones."""
    for name, rows in (("first_frame", first), ("later_frames", later)):
        p_true, p_copy, changed = np.mean(rows, axis=0) if rows else [float("nan")] * 3
        print(f"{name} frames: {len(rows)}")
        print(f"changed_codes {name}: {changed:.1f} of {size}")
        print(f"p_true {name}: {p_true:.3f}")
        print(f"p_copy {name}: {p_copy:.3f}")


def report_by_emotion(rows: dict[str, list[dict]]) -> None:
    """`name: value` lines of `answer_first_frame`, averaged per answer emotion."""
    for emotion, measured in sorted(rows.items()):
        print(f"answers {emotion}: {len(measured)}")
        for key in sorted({k for m in measured for k in m}):
            values = [m[key] for m in measured if key in m]
            print(f"{key} {emotion}: {np.mean(values):.3f}")


def probe_args(doc: str, examples: int) -> argparse.Namespace:
    """The arguments of an LM probe: `--checkpoint`, `--examples`, then train.py overrides naming
    the data (also `bench/turn_probe.py`'s); one math thread."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="a consolidated LM export")
    parser.add_argument("--examples", type=int, default=examples, help="training sequences to read")
    parser.add_argument("overrides", nargs="*", help="train.py overrides naming the data")
    torch.set_num_threads(1)
    return parser.parse_args()


def main() -> None:
    args = probe_args(__doc__, 400)
    job, _ = lm_job(compose("train", args.overrides))
    data = prepare_data(job)
    pipe = load_pipeline(args.checkpoint, device="cpu", dtype="float32")
    model, layout = pipe.model, pipe.layout
    if not model.heads["video"].whole_step:
        raise SystemExit(
            f"error: {args.checkpoint} has no frame head (one that decides whole "
            "frames, e.g. layout.video_head=maskgit)"
        )
    size = layout.h * layout.w
    parts = code_parts(pipe.video_tokenizer, layout.h, layout.w, MOUTH_BOX)
    records = load_manifest(job.data).records
    emotion_of = {r.clip_id: r.labels["emotion"] for r in records if r.labels.get("emotion")}
    first, later, by_emotion = [], [], {}
    for i in range(min(args.examples, len(data.train))):
        frames = responder_frames(model, item_row(data.train[i]))
        for k, *measured in frame_changes(frames, size):
            (first if k == 0 else later).append(measured)
        emotion = emotion_of.get(data.train.examples[i].segments[-1][1])
        if emotion is not None and (measured := answer_first_frame(frames, parts)):
            by_emotion.setdefault(emotion, []).append(measured)
    print(f"first frame parts: {','.join(parts)}")
    report_changes(first, later, size)
    report_by_emotion(by_emotion)


if __name__ == "__main__":
    try:
        main()
    except VidchatError as exc:  # a missing checkpoint or data: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
