"""Cross-identity reenactment with a motion tokenizer, on demo faces it never saw in training.

    python bench/reenact.py  # the shipped one, vidchat/assets/demo64/motion_tokenizer
    python bench/reenact.py --checkpoint checkpoints/tokenizers/motion [--faces 8] [--seconds 2]
    python bench/reenact.py --train-steps 1500 --work runs/reenact [-- trainer=gpu]  # train first

The demo world draws any face state on any identity, so `render_face(B, A's track)` is the
pixel-exact answer to "A's motion on B's face". For each ordered pair (A, B) of held-out faces
(identities after the `--trained-faces` the tokenizer's world used), A talks with an emotion;
the tokenizer codes A's frames and renders the codes on B's neutral reference. The emotion
shows in the mouth corners, brows and eyes (`--expression face`, the world the shipped tokenizer
was trained on) or in the mouth corners only (`--expression mouth`). It prints:

- `reenact psnr db`: the renders against `render_face(B, A's track)` (goal >= 26);
- `reenact emotion agreement`: the demo emotion oracle on the renders against A's (goal >= 0.95);
- `reenact identity`: the demo identity oracle names B (goal 1.00);
- `reenact mouth curvature happy|sad`: the renders' median mouth-corner lift (`mouth_curvature`,
  fractions of the frame) beside the target's: how much of a smile or a frown gets drawn;
- `identity probe from motion codes` (with chance) and `emotion probe from motion codes`: linear
  probes on each clip's bag of codes, held out by take (goal: identity <= 2x chance, emotion
  >= 0.9): identity must not pass through the code, expression must;
- `identity probe from the motion alone`: the same identity probe on the codes of each clip's
  track drawn on one other face (the same host for every clip). The demo's mouths follow their
  own synthetic voices, so a clip's motion itself says a little about whose it is; this is the
  figure a code that carries no appearance at all would read, the floor for the probe above;
- `round trip psnr db`: A's codes rendered on A's own reference, against A's frames (goal >= 30);
- `round trip psnr db on crisp renders` and `video codec psnr db`: see below.

**Frames as a video file gives them.** The tokenizer learns from, and in use reads, decoded
video: the demo world's clips are mp4 (libx264, crf 18, yuv420p, as `write_clip` writes them),
and so are a user's. So every frame the bench gives the tokenizer (A's clips, B's reference)
and every target it compares against first makes that round trip through an mp4 (`--crisp`: not,
as before 2026-12-06). A crisp 64 px demo face loses about 28 dB to the codec alone (mostly
yuv420p's halved colour resolution on the face's sharp edges), a loss no tokenizer trained on
video files is asked to undo; `video codec psnr db` prints it (A's decoded frames against the
crisp renders), and `round trip psnr db on crisp renders` the round trip of the crisp frames
(an input the tokenizer never saw in training).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from itertools import permutations
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from any folder
sys.path.insert(0, str(ROOT / "bench"))

from expression_probe import held_out_accuracy  # noqa: E402

from vidchat.data.demo_world.face import (  # noqa: E402
    classify_emotion,
    mouth_curvature,
    neutral_track,
    render_face,
)
from vidchat.data.demo_world.identities import make_identities  # noqa: E402
from vidchat.data.demo_world.script import speaking_track  # noqa: E402
from vidchat.data.demo_world.speech import EMOTIONS, synthesize_turn  # noqa: E402
from vidchat.eval.metrics.demo_oracle import identity_match  # noqa: E402
from vidchat.media.read import read_clip  # noqa: E402
from vidchat.media.write import write_clip  # noqa: E402
from vidchat.tokenizers import build_video_tokenizer  # noqa: E402
from vidchat.training.tokenizers.metrics import psnr  # noqa: E402

SR = 16000
SHIPPED = "pkg:vidchat/assets/demo64/motion_tokenizer"


def talking(person, emotion: str, seconds: float, fps: float, size: int, seed: int, face: bool):
    """A face track of `person` talking with `emotion` (in the brows and eyes too with `face`)
    -> (track, frames [T,H,W,3])."""
    rng = np.random.default_rng(seed)
    audio, _ = synthesize_turn(rng, person, emotion, seconds, SR)
    track = speaking_track(rng, audio, SR, fps, emotion, upper_face=face)
    return track, render_face(person, track, size)


class VideoFile:
    """Frames `[T,H,W,3]` uint8 -> the same frames as an mp4 written by `write_clip` (the demo
    world's settings) gives them back; identity when `crisp`."""

    def __init__(self, fps: float, crisp: bool) -> None:
        self.fps, self.crisp = fps, crisp
        self.folder = tempfile.TemporaryDirectory(prefix="reenact-")

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if self.crisp:
            return frames
        path = Path(self.folder.name) / "clip.mp4"
        silence = np.zeros(round(SR * (len(frames) + 1) / self.fps), np.float32)
        write_clip(path, frames, silence, self.fps, SR)
        back = read_clip(path, fps=self.fps, size=frames.shape[1:3]).frames
        return np.ascontiguousarray(back[: len(frames)])


def db(a: np.ndarray, b: np.ndarray) -> float:
    return float(psnr(torch.from_numpy(a).float() / 255, torch.from_numpy(b).float() / 255))


@torch.no_grad()
def measure(
    tokenizer, people, host, seconds: float, takes: int, face: bool, crisp: bool = False
) -> dict[str, float]:
    """`host`: the one face every clip's motion is also drawn on (the probe's floor)."""
    fps, size = tokenizer.spec.pixel_frame_rate, tokenizer.spec.frame_size[0]
    video = VideoFile(fps, crisp)
    neutral = {p.name: render_face(p, neutral_track(), size) for p in people}  # [1,H,W,3] each
    gallery = {name: video(frame)[0] for name, frame in neutral.items()}  # as the tokenizer reads
    cross, emotion_hits, identity_hits, round_trip = [], [], [], []
    round_trip_crisp, codec = [], []
    curvature = {e: ([], []) for e in ("happy", "sad")}  # emotion -> (renders', targets')
    bags, hosted_bags, who, felt, take_of = [], [], [], [], []

    def bag(codes: torch.Tensor) -> np.ndarray:  # [1,T,1,N] -> how often each code occurs a frame
        counts = np.bincount(codes.flatten().cpu().numpy(), minlength=tokenizer.spec.codebook_size)
        return counts / codes.shape[1]

    def encode(frames: np.ndarray) -> torch.Tensor:  # [T,H,W,3] uint8 -> codes [1,T,1,N]
        return tokenizer.encode(torch.from_numpy(frames)[None])

    for take in range(takes):
        clips = {}
        for i, person in enumerate(people):
            for e, emotion in enumerate(EMOTIONS):  # every face shows every emotion: no confound
                seed = 1000 * take + 10 * i + e
                track, drawn = talking(person, emotion, seconds, fps, size, seed, face)
                frames = video(drawn)
                codes = encode(frames)
                bags.append(bag(codes))
                hosted_bags.append(bag(encode(video(render_face(host, track, size)))))
                who.append(i), felt.append(e), take_of.append(take)
                if e == (i + take) % len(EMOTIONS):  # one clip per face is reenacted
                    clips[person.name] = (person, emotion, track, frames, codes)
                    ref = torch.from_numpy(gallery[person.name])
                    back = tokenizer.decode(codes, reference=ref)[0].cpu().numpy()
                    round_trip.append(db(back, frames))
                    crisp_ref = torch.from_numpy(neutral[person.name][0])
                    crisp_codes = encode(drawn)
                    back = tokenizer.decode(crisp_codes, reference=crisp_ref)[0].cpu().numpy()
                    round_trip_crisp.append(db(back, drawn))
                    codec.append(db(frames, drawn))
        for a, b in permutations(clips, 2):
            _, emotion, track, _, codes = clips[a]
            target = video(render_face(clips[b][0], track, size))
            render = (
                tokenizer.decode(codes, reference=torch.from_numpy(gallery[b]))[0].cpu().numpy()
            )
            cross.append(db(render, target))
            emotion_hits.append(classify_emotion(render) == emotion)
            if emotion in curvature:
                curvature[emotion][0].append(np.median(mouth_curvature(render)))
                curvature[emotion][1].append(np.median(mouth_curvature(target)))
            identity_hits.append(identity_match(render, gallery, b).value)
    x = torch.tensor(np.array(bags), dtype=torch.float32)
    train = torch.tensor(take_of) < max(1, takes - 1)  # the last take is held out
    with torch.enable_grad():  # the probes fit a classifier
        identity_probe = held_out_accuracy(x, torch.tensor(who), train, classes=len(people))
        hosted = torch.tensor(np.array(hosted_bags), dtype=torch.float32)
        floor = held_out_accuracy(hosted, torch.tensor(who), train, classes=len(people))
        emotion_probe = held_out_accuracy(x, torch.tensor(felt), train)
    return {
        "reenact psnr db": float(np.mean(cross)),
        "reenact emotion agreement": float(np.mean(emotion_hits)),
        "reenact identity": float(np.mean(identity_hits)),
        "identity probe": identity_probe,
        "identity chance": 1.0 / len(people),
        "identity probe from the motion alone": floor,
        "emotion probe": emotion_probe,
        "round trip psnr db": float(np.mean(round_trip)),
        "round trip psnr db on crisp renders": float(np.mean(round_trip_crisp)),
        "video codec psnr db": float(np.mean(codec)),
        **{
            f"reenact mouth curvature {e}": (float(np.mean(r)), float(np.mean(t)))
            for e, (r, t) in curvature.items()
            if r
        },
    }


def train(
    work: Path, steps: int, faces: int, conversations: int, expression: str, extra: list[str]
) -> Path:
    """The shipped tokenizer's recipe (`experiment=demo64_motion stage=video_tokenizer`) on a
    world of `faces` with `steps` (`extra`: more overrides, e.g. `trainer=gpu`)."""
    cmd = [sys.executable, str(ROOT / "train.py"), "experiment=demo64_motion"]
    cmd += ["stage=video_tokenizer", "stage.batch_size=32", f"stage.max_steps={steps}"]
    cmd += ["stage.edge_weight=1.0"]
    cmd += [f"paths.root_dir={work}", f"data.root={work}/data_cache/demo64_{expression}"]
    cmd += [f"data.num_identities={faces}", f"data.num_conversations={conversations}"]
    cmd += [f"data.expression={expression}", "trainer.val_check_interval=500"]
    cmd += ["trainer.limit_val_batches=20", *extra]
    subprocess.run(cmd, check=True)
    return work / "checkpoints" / "tokenizers" / "demo64_motion"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", default=SHIPPED, help="a trained motion tokenizer (stem)")
    p.add_argument("--train-steps", type=int, default=0, help="train one first, and measure it")
    p.add_argument("--work", type=Path, default=Path("runs/reenact"), help="where to train it")
    p.add_argument("--conversations", type=int, default=768, help="world size when training")
    p.add_argument(
        "--expression", choices=["face", "mouth"], default="face", help="where emotion shows"
    )
    p.add_argument("--trained-faces", type=int, default=256, help="identities it was trained on")
    p.add_argument("--faces", type=int, default=6, help="held-out identities to measure on")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each talking clip")
    p.add_argument("--takes", type=int, default=3, help="clips per face (the last is held out)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument(
        "--crisp", action="store_true", help="give the tokenizer crisp renders, not mp4 frames"
    )
    p.add_argument("overrides", nargs="*", help="after --: train.py overrides (trainer=gpu)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    stem = args.checkpoint
    if args.train_steps:
        stem = train(
            args.work,
            args.train_steps,
            args.trained_faces,
            args.conversations,
            args.expression,
            args.overrides,
        )
    tokenizer = build_video_tokenizer({"kind": "motion", "checkpoint": str(stem)}).eval()
    *people, host = make_identities(args.trained_faces + args.faces + 1)[args.trained_faces :]
    face = args.expression == "face"
    takes = max(2, args.takes)
    figures = measure(tokenizer, people, host, args.seconds, takes, face, args.crisp)
    print(f"tokenizer: {stem}, {np.prod(tokenizer.spec.grid)} codes per frame")
    for name in ("reenact psnr db", "reenact emotion agreement", "reenact identity"):
        print(f"{name}: {figures[name]:.3f}")
    print(
        f"identity probe from motion codes: {figures['identity probe']:.3f} "
        f"(chance {figures['identity chance']:.3f})"
    )
    print(
        "identity probe from the motion alone: "
        f"{figures['identity probe from the motion alone']:.3f}"
    )
    print(f"emotion probe from motion codes: {figures['emotion probe']:.3f}")
    for name in ("round trip psnr db", "round trip psnr db on crisp renders"):
        print(f"{name}: {figures[name]:.3f}")
    if not args.crisp:
        print(f"video codec psnr db: {figures['video codec psnr db']:.3f}")
    for e in ("happy", "sad"):
        if f"reenact mouth curvature {e}" in figures:
            drawn, target = figures[f"reenact mouth curvature {e}"]
            print(f"reenact mouth curvature {e}: {drawn:.4f} (target {target:.4f})")


if __name__ == "__main__":
    main()
