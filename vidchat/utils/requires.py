"""Optional packages, checked once at a command's start: a missing one is one `error:` line
naming the install commands, never a failure per source or per sample later on."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

INSTALL = 'pip install -e ".[all]" && bash scripts/install_extras.sh'
"""The README's set-up: every extra, then what pip cannot express."""


def require(modules: Iterable[str], what: str) -> None:
    """Raise one `VidchatError` when any of `modules` (import names) is not installed."""
    from vidchat.errors import VidchatError

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise VidchatError(f"{what} needs {', '.join(missing)}, which is not installed: {INSTALL}")
