"""Diagnostic (no timing): does the backbone carry the partner's expression to the answer?

    python bench/turn_probe.py --checkpoint checkpoints/pre13/lm [--examples 1500] \
        -- experiment=demo64 stage=pretrain 'stage.branches=[single,listening,dialogue,multi_turn]' \
        data.root=data_cache/demo64_384_face data.num_conversations=384 data.name=demo384face \
        data.head_sway=0 data.expression=face

A frame-head LM decides the responder's first frame from the backbone state after the step
before it. On the demo world's dialogue and listening pairs among the first `examples` training
sequences, this fits a linear classifier of the answer's emotion label (happy, neutral, sad;
the mirroring rule makes it the partner's) to two features, held out by conversation (every
fourth one is the test set):

- `context`: the backbone state before the responder's first frame (what the frame head reads);
- `partner_input`: the mean backbone input of the partner's video frames (what is there to read).

When the partner input reads well and the context does not, the backbone does not carry the
partner's expression to where the answer's face is decided (`model.partner_summary` adds a
direct path). Ends with `name: value` lines (held-out accuracy; chance is about 0.33).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder
sys.path.insert(0, str(ROOT / "bench"))

from copy_probe import probe_args  # noqa: E402
from expression_probe import held_out_accuracy  # noqa: E402

from vidchat.cli import compose  # noqa: E402
from vidchat.data.demo_world.speech import EMOTIONS  # noqa: E402
from vidchat.data.lm_dataset import item_row  # noqa: E402
from vidchat.data.manifest import load_manifest  # noqa: E402
from vidchat.errors import VidchatError  # noqa: E402
from vidchat.model.checkpoint import load_consolidated  # noqa: E402
from vidchat.model.steps import Steps  # noqa: E402
from vidchat.model.vocab import Modality, Role  # noqa: E402
from vidchat.training.lm.data import prepare_data  # noqa: E402
from vidchat.training.lm.entry import lm_job  # noqa: E402


def turn_features(model, row: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray] | None:
    """(backbone state before the responder's first frame `[D]`, mean input of the partner's
    frames `[D]`) of one sequence; None without both."""
    b = {k: v[None] for k, v in row.items()}
    steps = Steps.of(b["depth"])
    with torch.no_grad():
        x = model.step_inputs(b["tokens"], b["roles"], b["next_slots"], steps, b["modality"])
        hidden = model.backbone(x)[0]  # [S,D]
    video = b["modality"][0][steps.start] == int(Modality.VIDEO)  # [S]
    role = b["roles"][0][steps.start]
    answer = (video & (role == int(Role.RESPONDER))).nonzero()[:, 0]
    partner = (video & (role == int(Role.PARTNER))).nonzero()[:, 0]
    if not len(answer) or not len(partner) or answer[0] == 0:
        return None
    return hidden[answer[0] - 1].numpy(), x[0, partner].mean(0).numpy()


def main() -> None:
    args = probe_args(__doc__, 1500)
    torch.manual_seed(0)
    model, _, _ = load_consolidated(args.checkpoint)  # first: a bad path fails before any data
    job, _ = lm_job(compose("train", args.overrides))
    data = prepare_data(job)
    records = load_manifest(job.data).records
    label = {r.clip_id: r.labels for r in records if r.labels.get("emotion") in EMOTIONS}
    feats: dict[str, list] = {"context": [], "partner_input": []}
    emotions, conversations = [], []
    for i in range(min(args.examples, len(data.train))):
        example = data.train.examples[i]
        clip = example.segments[-1][1]
        if clip not in label or example.branch not in ("dialogue", "listening"):
            continue
        found = turn_features(model, item_row(data.train[i]))
        if found is None:
            continue
        feats["context"].append(found[0])
        feats["partner_input"].append(found[1])
        emotions.append(EMOTIONS.index(label[clip]["emotion"]))
        conversations.append(str(label[clip].get("conversation", clip)))
    if not emotions:
        raise SystemExit("error: no dialogue or listening pair with an emotion label in the data")
    order = {c: i for i, c in enumerate(sorted(set(conversations)))}
    train = torch.tensor([order[c] % 4 != 0 for c in conversations])
    y = torch.tensor(emotions)
    print(f"{len(y)} answers, {int(train.sum())} to fit, {int((~train).sum())} held out")
    for name, rows in feats.items():
        x = torch.tensor(np.array(rows), dtype=torch.float32)
        print(f"probe {name}: {held_out_accuracy(x, y, train):.2f}")


if __name__ == "__main__":
    try:
        main()
    except VidchatError as exc:  # a missing checkpoint or data: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
