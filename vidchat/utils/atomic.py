"""Atomic file writes: a reader (or a crashed run's successor) sees the old file or the whole new
one, never half of one.

Everything is written to a temp file in the destination's folder, flushed to disk, then
`os.replace`d onto the final name; `os.replace` within one file system is atomic on POSIX.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STALE_TEMP_S = 60.0
"""A temp file of ours untouched this long belongs to a writer that was killed (a live one,
such as `infer.py`'s streaming mp4, writes to it far more often)."""


def remove_stale_temps_of(path: Path) -> list[Path]:
    """Delete the temp files a killed writer of `path` left beside it (`.{name}.*`, untouched
    for `STALE_TEMP_S`): only this target's, since the folder may be the user's. Called by
    writers of user-facing outputs (`ClipStreamWriter`), not by every atomic write: it lists
    the folder, which for a shard folder of thousands of files on every flush would cost."""
    stale = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*"):
        try:
            if tmp.is_file() and time.time() - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()
                stale.append(tmp)
        except OSError:
            pass  # gone already, or not ours to remove
    return stale


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside `path`; it becomes `path` when the block ends without an error
    and is deleted otherwise. `suffix` matters to writers that pick a format by extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(
    path: str | os.PathLike, obj: Any, indent: int | None = 1, **dump_kwargs: Any
) -> Path:
    """JSON (`json.dumps(obj, indent=indent, **dump_kwargs)`), atomically: the one JSON writer
    of the project (manifests, shard indexes, checkpoint configs, reports)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, **dump_kwargs))


def check_writable_folder(folder: str | os.PathLike, what: str, create: bool = True) -> Path:
    """`folder` (created if missing) can take a new file: tried, not guessed from permission
    bits (root ignores them; read-only mounts and /proc do not). `what` names the setting.
    With `create=False` nothing is left behind: a missing folder is tried by making and
    removing a folder in its nearest existing parent."""
    from vidchat.errors import VidchatError

    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise VidchatError(f"{what} {folder}: {existing} is a file, not a folder")
    try:
        if not create and not folder.exists():
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".vidchat-write-test-"))
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".vidchat-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise VidchatError(f"{what} {folder}: cannot write there ({exc.strerror})") from exc
    return folder
