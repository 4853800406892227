"""Where vidchat's own files live, and how a path in a config or a checkpoint is resolved.

Configs and the demo checkpoints ship inside the package (`vidchat/configs/`,
`vidchat/assets/demo/`), so a non-editable `pip install .` finds them from any folder. A config
or a checkpoint's metadata names a shipped file as `pkg:vidchat/<path inside the package>`
(for example `pkg:vidchat/assets/demo/video_tokenizer`): portable across machines and installs,
unlike an absolute path. The prefix survives `pathlib` joins (`Path("pkg:vidchat/a") / "b"`).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONFIG_DIR = PACKAGE_DIR / "configs"
PACKAGE_PREFIX = "pkg:vidchat/"


def resolve(path: str | os.PathLike) -> Path:
    """`pkg:vidchat/...` -> the file inside this installed package; any other path as given."""
    text = os.fspath(path)
    if text.startswith(PACKAGE_PREFIX):
        return PACKAGE_DIR / text[len(PACKAGE_PREFIX) :]
    return Path(text)


def resolve_existing(path: str | os.PathLike, *bases: Path, suffix: str = "") -> Path:
    """`resolve(path)` if it exists (with `suffix` appended to test, e.g. `.json` for a stem),
    else the first base that holds it, else a sibling of the same name in the first base (how a
    checkpoint finds the files shipped next to it wherever it was copied); else as resolved."""
    p = resolve(path)

    def exists(q: Path) -> bool:
        return Path(os.fspath(q) + suffix).exists()

    if p.is_absolute() or exists(p):
        return p
    for base in bases:
        if exists(base / p):
            return base / p
    if bases and exists(bases[0] / p.name):
        return bases[0] / p.name
    return p
