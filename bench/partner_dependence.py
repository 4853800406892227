"""Diagnostic (no timing): does the responder's first answer frame depend on its partner?

    python bench/partner_dependence.py [--checkpoint STEM] [--pairs 60] [-- eval overrides]

Teacher-forced, no sampling (VidChatBench's `partner_dependence`, vidchat/eval/metrics/partner.py):
for each test dialogue pair, the LM reads the true answer's first chunk after the true partner
and after a partner of another emotion (same reference, turns cut to the same length), and the
two distributions over the first frame's video codes are compared: the mean KL per code, how
often the true code gains probability under the true partner (`gain`), and how often the most
likely frame after the true partner, decoded, is the closer to the true answer's (`pixel gain`,
of the `pixel moved` pairs whose two frames differ there at all),
over the whole frame and over the demo face's mouth box. The mouth's code gain counts the box's
cells for the VQ, whose codes are places in the frame, and every code for the motion kind, whose
codes are not (`gain mouth codes` says which); the pixel gain reads the box the same way for
both. The same architecture with fresh weights is the floor. A responder that ignores its
partner scores 0 throughout. Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vidchat.cli import compose  # noqa: E402
from vidchat.data.demo_world.face import MOUTH_BOX  # noqa: E402
from vidchat.data.manifest import load_manifest  # noqa: E402
from vidchat.errors import VidchatError  # noqa: E402
from vidchat.eval.config import EvalConfig  # noqa: E402
from vidchat.eval.metrics.partner import (  # noqa: E402
    code_cells,
    lm_scorer,
    pair_cases,
    partner_dependence,
    pipeline_renderer,
)
from vidchat.eval.runner import read_pairs, untrained_copy  # noqa: E402
from vidchat.inference.loading import load_pipeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default=None, help="LM stem (default: the demo responder)")
    parser.add_argument("--pairs", type=int, default=60, help="test dialogue pairs to read")
    parser.add_argument("overrides", nargs="*", help="python -m vidchat.eval overrides (data)")
    args = parser.parse_args()
    cfg = EvalConfig.from_cfg(compose("eval", ["device=cpu", *args.overrides]))
    pipe = load_pipeline(args.checkpoint, device="cpu")
    manifest = load_manifest(cfg.data)
    pairs = [p for p in manifest.pairs_for(cfg.split, ["dialogue"]) if p.responder][: args.pairs]
    inputs = read_pairs(pipe, pairs, [], manifest.records)
    h, w = pipe.layout.h, pipe.layout.w
    print(f"{len(inputs)} {cfg.split} dialogue pairs, {h}x{w} codes per frame")
    for system, p in (("model", pipe), ("untrained", untrained_copy(pipe, 0))):
        cases, score, render = (
            pair_cases(p, inputs),
            lm_scorer(p.model, p.layout),
            pipeline_renderer(p),
        )
        for part, box in (("frame", None), ("mouth", MOUTH_BOX)):
            cells = code_cells(p.video_tokenizer, h, w, box)
            result = partner_dependence(cases, score, cells, render, box)
            if box is None:
                print(f"kl {system}: {result.value:.6f}")
            else:
                print(f"gain {part} codes {system}: {result.details['gain_over']}")
            print(f"gain {part} {system}: {result.details['gain']:.3f}")
            print(f"pixel moved {part} {system}: {result.details['pixel_moved']:.3f}")
            print(f"pixel gain {part} {system}: {result.details['pixel_gain']:.3f}")


if __name__ == "__main__":
    try:
        main()
    except VidchatError as exc:
        sys.exit(f"error: {exc}")
