"""Locate user-given weight files; metrics never download, so a missing file is a skip or an error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from vidchat.errors import VidchatError


def user_weights(path: str | Path | None, metric: str) -> Path | None:
    """None when the config gave no path (the metric is then skipped); the path when it exists.

    A path that was given but does not exist is a user error (a typo should not silently
    turn a metric off).
    """
    if path is None or str(path) == "":
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise VidchatError(
            f"weights for metric {metric!r} not found: {p} (fix the path or set it to null)"
        )
    return p


def package_dir(package: str) -> Path | None:
    """Folder of an installed package without importing it (some import slowly or oddly)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def missing_extra(package: str) -> str:
    return f"package {package!r} is not installed (pip install -e '.[eval]')"
