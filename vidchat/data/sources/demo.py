"""The demo world as a data source: generate it on first use (cached), then read it back with the
SpeakerVid-5M release loader, like any release.

`python -m vidchat.data.sources.demo [ROOT] [key=value ...]` generates (or finds) it and prints
its manifest path (default root: data_cache/demo).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from filelock import FileLock

from vidchat.data.demo_world.world import (
    GENERATOR_VERSION,
    MANIFEST_FILE,
    MARKER,
    DemoWorldConfig,
    generate_demo_world,
)
from vidchat.data.pairs_jsonl import write_pairs_jsonl
from vidchat.data.speakervid import load_speakervid
from vidchat.utils.atomic import atomic_write_json, check_writable_folder


def write_test_pairs(root: Path) -> None:
    """`testset.json` (the test split's dialogue pairs, as the release lists them) and
    `test_pairs.jsonl` (every test pair, in the infer/eval format), from the loader's pairing."""
    manifest = load_speakervid(root)  # reads splits.json
    test_pairs = [p for p in manifest.pairs_for("test") if p.branch == "dialogue"]
    atomic_write_json(
        root / "testset.json",
        [{"partner": p.partner.clip_id, "responder": p.responder.clip_id} for p in test_pairs],
    )
    write_pairs_jsonl(root / "test_pairs.jsonl", manifest.pairs_for("test"))


def ensure_demo_world(
    root: str | Path,
    cfg: Any = None,
    progress: bool = True,
    allowed: bool = True,
    cache_dir: str | Path | None = None,
) -> Path:
    """Generate the demo world into `root` unless an up-to-date one is there -> manifest path.

    Safe to call from parallel processes (file lock); a changed config or generator version
    regenerates it; the swap into `root` is atomic (built in a temp folder, then renamed).
    Generates only where `allowed` or under `cache_dir` (a data config passes
    `data.generate_world` and the data cache, so a mistyped `data.root` is one error line, not
    a new folder and a full run), and never over a folder that holds anything but a demo world.
    """
    root = Path(root).absolute()
    gen_cfg = cfg if isinstance(cfg, DemoWorldConfig) else DemoWorldConfig.from_cfg(cfg)
    marker = root / MARKER
    want = {"version": GENERATOR_VERSION, "config_hash": gen_cfg.digest()}
    if marker.exists() and json.loads(marker.read_text()) == want:  # up to date: no lock needed
        return root / MANIFEST_FILE
    _check_may_generate(root, allowed, cache_dir)
    # an unwritable place would make the lock below wait forever
    check_writable_folder(root.parent, "data.root: the demo world's parent folder")
    with FileLock(str(root.parent / f".{root.name}.lock")):
        if marker.exists() and json.loads(marker.read_text()) == want:
            return root / MANIFEST_FILE
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            generate_demo_world(tmp, gen_cfg, progress=progress)
            write_test_pairs(tmp)
            atomic_write_json(tmp / MARKER, want)
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            if root.exists():
                os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root / MANIFEST_FILE


def _check_may_generate(root: Path, allowed: bool, cache_dir: str | Path | None) -> None:
    from vidchat.errors import VidchatError

    under_cache = cache_dir is not None and root.is_relative_to(Path(cache_dir).absolute())
    if not (allowed or under_cache):
        raise VidchatError(
            f"data.root={root}: no demo world there; one is generated only under "
            f"the data cache ({cache_dir}), or into data.root with "
            "data.generate_world=true"
        )
    if root.is_dir() and any(root.iterdir()) and not (root / MARKER).exists():
        raise VidchatError(
            f"data.root={root} holds files that are not a demo world; a demo "
            "world is generated only into a new or empty folder, or over an "
            "older demo world"
        )


def main(argv: list[str] | None = None) -> None:
    """`python -m vidchat.data.sources.demo [ROOT] [key=value ...]` (defaults: data_cache/demo)."""
    args = list(sys.argv[1:] if argv is None else argv)
    root = Path("data_cache/demo")
    overrides: dict[str, Any] = {}
    for arg in args:
        if "=" in arg:
            key, value = arg.split("=", 1)
            overrides[key] = json.loads(value) if value[:1] in "[0123456789." else value
        else:
            root = Path(arg)
    print(ensure_demo_world(root, overrides))


if __name__ == "__main__":
    main()
