"""Per-clip JSON files of a release folder, read in place: `tar_batch_*.tar.gz` batches (or
plain `.tar`) and already extracted `*.json` files alike, without unpacking anything to disk.

The release ships `merged_anno/` and each `raw_labels/<kind>/` as tar batches; a user may have
extracted some of them. Both are read; a clip found twice keeps its first copy (in sorted file
order). A batch that cannot be opened is reported once and skipped, never fatal.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vidchat.data.speakervid.names import stem_of
from vidchat.utils.atomic import atomic_path

TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class Member:
    """One JSON document: its clip stem, where it came from (for messages) and its bytes."""

    stem: str
    where: str
    data: bytes


@dataclass
class BrokenArchive:
    where: str
    reason: str


def iter_members(folder: Path, broken: list[BrokenArchive] | None = None) -> Iterator[Member]:
    """Every `*.json` under `folder` (recursively) and every `*.json` member of its tar batches.

    `broken` collects the archives that could not be read (corrupt or truncated gzip/tar); the
    members read before the damage are still yielded.
    """
    seen: set[str] = set()
    # hidden names are temp files of an interrupted write, never release files
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.name.endswith(".json"):
            members: Iterator[Member] = iter([_file_member(path)])
        elif path.name.endswith(TAR_SUFFIXES):
            members = _tar_members(path, broken)
        else:
            continue
        for member in members:
            if member.stem not in seen:
                seen.add(member.stem)
                yield member


def _file_member(path: Path) -> Member:
    return Member(stem_of(path.name), str(path), path.read_bytes())


def _tar_members(path: Path, broken: list[BrokenArchive] | None) -> Iterator[Member]:
    """Stream a tar batch member by member (`r|*`: sequential, no random access needed)."""
    try:
        with tarfile.open(path, "r|*") as tar:
            for info in tar:
                if not (info.isfile() and info.name.endswith(".json")):
                    continue
                handle = tar.extractfile(info)
                if handle is not None:
                    yield Member(stem_of(info.name), f"{path}:{info.name}", handle.read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        if broken is not None:
            broken.append(BrokenArchive(str(path), f"{type(exc).__name__}: {exc}"))


def write_tar_batch(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """(name, bytes) members -> a `tar_batch_*.tar.gz` like the release's, atomically and
    byte-reproducibly (fixed member times, owner and gzip header time)."""
    with atomic_path(path, suffix=".tar.gz") as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, data in members:
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
    return path
