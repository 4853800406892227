"""Diagnostic (#33's overfit rung): can the demo64 LM learn to mirror its partner on the pairs
it trains on?

    python bench/overfit_rung.py [--steps 600] [--conversations 6] [--work data_cache/overfit_rung]
    python bench/overfit_rung.py --experiment demo64_motion  # the same on motion codes (#40)
    python bench/overfit_rung.py --expression face  # emotion in the brows and eyes as well

Generates a small 64 px demo world (`--conversations`; 6 give 12 training dialogue pairs,
happy, sad and neutral), trains the demo64 LM from scratch on its training dialogue pairs alone
(SFT, no noise, no stranger partners) for `--steps`, then scores those same training pairs with
`python -m vidchat.eval`: demo emotion, lip sync and identity of sampled answers (temperature 1,
and greedy), against the tokenizer's round trip, and the teacher-forced `partner_dependence`.
A model that memorises its pairs but does not mirror on them points to the information flow
(how the answer's context is laid out in training and at inference), not to generalisation.
About 10 minutes on 2 CPU cores at 600 steps. Ends with `name: value` lines.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder

from vidchat.data.demo_world.world import EXPRESSIONS  # noqa: E402

METRICS = "[demo_emotion,demo_lip_sync,demo_identity,partner_dependence]"
GREEDY = ["sampling.video.top_k=1", "sampling.audio.top_k=1", "sampling.boundary.top_k=1"]


def _run(args: list[str], cwd: Path) -> None:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "error: failed")


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4f}"


def last_train_loss(run: Path) -> float:
    """The last `train/loss` the run's CSV log holds (NaN before the first logged step, when
    the logger may not have written its file yet)."""
    logs = list((run / "csv").glob("version_*/metrics.csv"))
    if not logs:
        return float("nan")
    log = max(logs, key=lambda p: int(p.parent.name.removeprefix("version_")))
    rows = [r for r in csv.DictReader(log.open()) if r.get("train/loss")]
    return float(rows[-1]["train/loss"]) if rows else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--conversations", type=int, default=6)
    parser.add_argument("--work", type=Path, default=ROOT / "data_cache" / "overfit_rung")
    parser.add_argument(
        "--experiment",
        default="demo64",
        help="demo64 (8x8 VQ codes) or demo64_motion (4 motion codes)",
    )
    parser.add_argument(
        "--expression",
        choices=EXPRESSIONS,
        default="mouth",
        help="where the world's emotion shows (data.expression)",
    )
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    world = [
        f"experiment={args.experiment}",
        f"paths.root_dir={work}",
        f"data.num_conversations={args.conversations}",
        f"data.expression={args.expression}",
    ]
    _run(
        [
            str(ROOT / "train.py"),
            *world,
            "stage=sft",
            "stage.branches=[dialogue]",
            "stage.noise.ratio=0",
            "stage.noise.stranger_partner=0",
            "stage.init_from=null",
            f"stage.max_steps={args.steps}",
            "stage.optim.lr=2e-3",
            "stage.optim.warmup_steps=20",
            "run_name=overfit",
            "trainer.val_check_interval=100",
        ],
        work,
    )
    print(f"experiment: {args.experiment}")
    print(f"expression: {args.expression}")
    print(f"steps: {args.steps}")
    print(f"train loss at the end: {last_train_loss(work / 'checkpoints' / 'overfit'):.4f}")
    evaluate = [
        "-m",
        "vidchat.eval",
        f"checkpoint={work}/checkpoints/overfit/lm",
        "split=train",
        "branches=[dialogue]",
        f"data.root={work}/data_cache/demo64",
        "data.video.size=64",
        "data.num_identities=32",
        f"data.num_conversations={args.conversations}",
        f"data.expression={args.expression}",
        f"paths.root_dir={work}",
        f"metrics={METRICS}",
        "device=cpu",
    ]
    for name, extra in (("sampled", []), ("greedy", GREEDY)):
        out = work / f"eval_{name}"
        _run([*evaluate, f"output_dir={out}", "systems=[model,tokenized]", *extra], ROOT)
        report = json.loads((out / "report.json").read_text())
        for system in ("model", "tokenized") if name == "sampled" else ("model",):
            overall = report["systems"][system]["overall"]
            for metric in ("demo_emotion", "demo_lip_sync", "demo_identity"):
                print(f"{metric} train {system} {name}: {_fmt(overall[metric]['mean'])}")
    pd = report["systems"]["model"]
    print(f"partner_dependence train model: {_fmt(pd['overall']['partner_dependence']['mean'])}")
    print(
        f"partner gain train model: {_fmt(pd.get('details', {}).get('partner_dependence', {}).get('gain'))}"
    )


if __name__ == "__main__":
    main()
