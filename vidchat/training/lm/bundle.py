"""Package a consolidated LM checkpoint for `infer.py`: copy it, attach a default responder face.

    python -m vidchat.training.lm.bundle checkpoints/sft/lm checkpoints/demo/lm \
        --reference data_cache/demo/refs/id00.png

The copy's JSON names its default reference face (stored beside it) and keeps the tokenizer
checkpoint paths relative to the project root, so the bundled folder works on a fresh clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from vidchat.cli import ArgumentParser, exit_on_user_error
from vidchat.errors import VidchatError
from vidchat.media import read_image, write_image
from vidchat.model.checkpoint import read_config, stem_of
from vidchat.utils.atomic import atomic_path, atomic_write_json


def bundle(src: str | Path, dst: str | Path, reference: str | Path | None = None) -> Path:
    """Copy `<src>.{safetensors,json}` to `<dst>.*` with `<dst>.reference.png` as default face."""
    src, dst = stem_of(src), stem_of(dst)
    doc = read_config(src)
    weights = src.with_suffix(".safetensors")
    if not weights.is_file():
        raise VidchatError(f"{weights}: weights of the consolidated LM checkpoint are missing")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if reference is not None:
        face = dst.with_name(f"{dst.name}.reference.png")
        write_image(face, read_image(reference))
        doc.setdefault("meta", {})["reference_image"] = face.name
    with atomic_path(dst.with_suffix(".safetensors")) as tmp:
        shutil.copyfile(weights, tmp)
    atomic_write_json(dst.with_suffix(".json"), doc, indent=2)
    return dst


def main(argv: list[str] | None = None) -> None:
    p = ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="consolidated checkpoint stem, e.g. checkpoints/sft/lm")
    p.add_argument("dst", help="where to put the bundle, e.g. checkpoints/demo/lm")
    p.add_argument("--reference", help="default responder face image")
    args = p.parse_args(argv)
    exit_on_user_error(lambda: print(f"bundled {bundle(args.src, args.dst, args.reference)}"))


if __name__ == "__main__":
    main()
