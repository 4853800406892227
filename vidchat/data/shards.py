"""Token shards: codes of every clip written once (`stage=tokenize`), read back without decoding video.

Layout of one shard set (a folder, see `vidchat.training.config.shard_dir`):

    meta.json                          tokenizer specs + code dtype (the set's identity)
    shard-<w>-<n>.npy                  all codes of up to `clips_per_shard` clips, one flat array
    shard-<w>-<n>.index.json           clip_id -> offsets/shapes in that array + per-clip meta,
                                       reference-image codes, and the clips that failed
    failures-<w>.json                  summary of failed clips of worker w (also in the indexes)

`<w>` is the worker (`shard_index` of `num_shards` machines), `<n>` its running shard number.
Crash safety: the `.npy` is written to a temp file and `os.replace`d, and only then its index is
committed the same way; a clip counts as done only once an index lists it, so a killed run resumes
where it stopped and never leaves half a shard behind. A clip is written again only when the
files it was made from changed (or it failed and is retried); readers take its newest entry
(`vidchat.data.shard_entries`).

Integrity: each index records its shard's size and sha256 and a checksum of itself. The reader
checks an index when it opens the set and a shard when it first reads it; a mismatch (a
truncated, zeroed or garbled file) is one error line naming the file. A new `ShardWriter` (a
rerun of `stage=tokenize`) deletes broken shards and their indexes, so their clips are redone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vidchat.data.shard_entries import Latest, entries_of, is_current, newest
from vidchat.errors import VidchatError
from vidchat.utils.atomic import atomic_path, atomic_write_json
from vidchat.utils.hashing import file_sha256

META_NAME = "meta.json"
SHARD_RE = re.compile(r"^shard-(\d+)-(\d+)\.index\.json$")
RERUN = "re-run `python train.py stage=tokenize`, which redoes broken shards"
log = logging.getLogger("vidchat")


@dataclasses.dataclass
class TokenizedClip:
    """Codes of one clip: video `[T,h,w]`, audio `[K,Ta]` (uint16, or int32 for big codebooks).

    `reference` holds the codes `[h,w]` of the clip's reference image when it has one.
    """

    clip_id: str
    video: np.ndarray
    audio: np.ndarray
    meta: dict[str, Any]
    reference: np.ndarray | None = None


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _index_checksum(index: dict[str, Any]) -> str:
    body = {k: v for k, v in index.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_index(path: Path) -> dict[str, Any]:
    """A shard index, checked against its own checksum (indexes without one are trusted)."""
    try:
        index = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VidchatError(f"{path}: unreadable shard index ({exc}); {RERUN}") from exc
    if not isinstance(index, dict) or not {"clips", "references", "failures"} <= set(index):
        raise VidchatError(f"{path}: not a shard index; {RERUN}")
    if "checksum" in index and index["checksum"] != _index_checksum(index):
        raise VidchatError(f"{path}: shard index does not match its checksum; {RERUN}")
    return index


def check_shard(root: Path, index: dict[str, Any], full: bool = True) -> None:
    """The index's shard file has the recorded size (and, with `full`, sha256)."""
    if not index.get("shard") or "sha256" not in index:
        return
    path = root / index["shard"]
    if not path.is_file() or path.stat().st_size != index["bytes"]:
        raise VidchatError(f"{path}: shard file missing or truncated; {RERUN}")
    if full and file_sha256(path) != index["sha256"]:
        raise VidchatError(f"{path}: shard file does not match its checksum; {RERUN}")


def _sound_indexes(root: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(worker, number, index) of each committed shard that passes its checks; broken ones are
    deleted on the way, so that their clips are redone."""
    for w, n, path in _committed_indexes(root):
        try:
            index = read_index(path)
            check_shard(root, index)
        except VidchatError as exc:
            log.warning("redoing a broken shard: %s", exc)
            path.unlink(missing_ok=True)
            path.with_name(path.name.replace(".index.json", ".npy")).unlink(missing_ok=True)
            continue
        yield w, n, index


def _committed_indexes(root: Path) -> Iterator[tuple[int, int, Path]]:
    for p in sorted(root.glob("shard-*.index.json")):
        m = SHARD_RE.match(p.name)
        if m:
            yield int(m.group(1)), int(m.group(2)), p


class ShardWriter:
    """Buffers tokenized clips and commits them shard by shard (see the module docstring).

    meta: the set's identity (tokenizer specs...); a folder written with a different meta is refused.
    worker: this machine's `shard_index`, part of every file name so machines never collide.
    commit_seconds: also commit a partial shard once this long has passed since the last commit,
    so a killed run loses at most that much work (None: only full shards).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        meta: dict[str, Any],
        dtype: np.dtype | str = np.uint16,
        clips_per_shard: int = 256,
        worker: int = 0,
        commit_seconds: float | None = None,
    ) -> None:
        self.root = Path(root)
        self.commit_seconds = commit_seconds
        self._last_commit = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        self.dtype = np.dtype(dtype)
        self.clips_per_shard = int(clips_per_shard)
        self.worker = int(worker)
        self.meta = _jsonable({**meta, "dtype": self.dtype.name})
        meta_path = self.root / META_NAME
        if meta_path.exists():
            existing = json.loads(meta_path.read_text())
            if existing != self.meta:
                raise VidchatError(
                    f"{self.root}: holds tokens from different settings ({meta_path}); "
                    "delete the folder or point the data/tokenizer config at a new one"
                )
        else:
            atomic_write_json(meta_path, self.meta, indent=None)
        self._refs: set[str] = set()
        self._seq = 0
        indexes = list(_sound_indexes(self.root))
        self._latest: dict[str, Latest] = newest(indexes)  # clip_id -> its newest entry
        for w, n, index in indexes:
            self._refs.update(index["references"])
            if w == self.worker:
                self._seq = max(self._seq, n + 1)
        self.failures: list[dict[str, str]] = [
            e.failure for e in self._latest.values() if e.failure and e.worker == self.worker
        ]
        self._reset_buffer()
        self.written_clips = 0

    def _reset_buffer(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._offset = 0
        self._clips: dict[str, dict[str, Any]] = {}
        self._references: dict[str, dict[str, Any]] = {}
        self._failures: list[dict[str, str]] = []

    @property
    def num_failed(self) -> int:
        """Failed clips of this worker, committed or buffered."""
        return len(self.failures) + len(self._failures)

    def is_done(
        self, clip_id: str, source: dict[str, Any] | None = None, retry_failed: bool = False
    ) -> bool:
        """A committed index lists the clip made from `source` (`records.source_signature`;
        None: from anything), tokenized, or failed unless `retry_failed` (`is_current`)."""
        return is_current(self._latest.get(clip_id), source, retry_failed)

    def has_reference(self, key: str) -> bool:
        return key in self._refs or key in self._references

    def _put(self, codes: np.ndarray) -> dict[str, Any]:
        codes = np.asarray(codes)
        if codes.size and (codes.min() < 0 or codes.max() > np.iinfo(self.dtype).max):
            raise ValueError(
                f"codes out of range for {self.dtype.name}: [{codes.min()}, {codes.max()}]"
            )
        entry = {"offset": self._offset, "shape": list(codes.shape)}
        self._chunks.append(codes.astype(self.dtype, copy=False).ravel())
        self._offset += codes.size
        return entry

    def add(self, clip_id: str, video: np.ndarray, audio: np.ndarray, meta: dict[str, Any]) -> None:
        """Buffer one clip: video codes `[T,h,w]`, audio codes `[K,Ta]`; flushes a full shard."""
        latest = self._latest.get(clip_id)  # only changed inputs or a retried failure supersede
        if clip_id in self._clips or (
            latest and not latest.failure and self.is_done(clip_id, meta.get("source"))
        ):
            raise ValueError(f"clip {clip_id!r} was already written to {self.root}")
        self._clips[clip_id] = {
            "video": self._put(video),
            "audio": self._put(audio),
            "meta": _jsonable(meta),
        }
        overdue = (
            self.commit_seconds is not None
            and time.monotonic() - self._last_commit >= self.commit_seconds
        )
        if len(self._clips) >= self.clips_per_shard or overdue:
            self.flush()

    def add_reference(self, key: str, codes: np.ndarray) -> None:
        """Buffer the codes `[h,w]` of a reference image (e.g. one per identity)."""
        if not self.has_reference(key):
            self._references[key] = self._put(codes)

    def add_failure(
        self, clip_id: str, path: str, error: str, source: dict[str, Any] | None = None
    ) -> None:
        failure = {"clip_id": clip_id, "path": str(path), "error": error}
        self._failures.append(failure if source is None else {**failure, "source": source})

    def flush(self) -> None:
        """Commit the buffer: shard array first (atomic), then its index (atomic)."""
        if not (self._clips or self._references or self._failures):
            return
        name = f"shard-{self.worker:03d}-{self._seq:05d}"
        has_codes = bool(self._chunks)
        index: dict[str, Any] = {"shard": f"{name}.npy" if has_codes else None}
        if has_codes:
            shard = self.root / f"{name}.npy"
            _atomic_npy(shard, np.concatenate(self._chunks))
            index.update(bytes=shard.stat().st_size, sha256=file_sha256(shard))
        index.update(
            clips=self._clips,
            references=self._references,
            failures=self._failures,
            committed_ns=time.time_ns(),
        )
        index["checksum"] = _index_checksum(index)
        atomic_write_json(self.root / f"{name}.index.json", index, indent=None)
        self._latest.update(entries_of(index, self.worker))
        self._refs.update(self._references)
        redone = set(index["clips"]) | {f["clip_id"] for f in self._failures}
        self.failures = [f for f in self.failures if f["clip_id"] not in redone]
        self.failures.extend(self._failures)
        self.written_clips += len(self._clips)
        self._seq += 1
        self._last_commit = time.monotonic()
        self._reset_buffer()

    def close(self) -> None:
        """Flush what is left and write this worker's failure list."""
        self.flush()
        atomic_write_json(
            self.root / f"failures-{self.worker:03d}.json", self.failures, indent=None
        )

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


class ShardReader:
    """Random access to tokenized clips of one or several shard sets (their indexes merged).

    `mmap=True` maps each shard file lazily (cheap open, pages read on demand); `mmap=False`
    loads each shard fully on first use.
    """

    def __init__(
        self, roots: str | os.PathLike | Iterable[str | os.PathLike], mmap: bool = True
    ) -> None:
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        self.roots = [Path(r) for r in roots]
        self.mmap = mmap
        self.meta: dict[str, Any] = {}
        self._clips: dict[str, tuple[Path, str, dict[str, Any]]] = {}
        self._refs: dict[str, tuple[Path, str, dict[str, Any]]] = {}
        self._failures: list[dict[str, str]] = []
        self._sources: dict[str, tuple[Path, dict[str, Any] | None]] = {}  # clip_id -> set, source
        self._arrays: dict[Path, np.ndarray] = {}
        self._expected: dict[Path, dict[str, Any]] = {}  # shard -> its index (checksums)
        for root in self.roots:
            self._load_root(root)

    def _load_root(self, root: Path) -> None:
        meta_path = root / META_NAME
        if not meta_path.is_file():
            raise VidchatError(
                f"{root}: not a token shard folder (no {META_NAME}); run `python train.py stage=tokenize`"
            )
        meta = json.loads(meta_path.read_text())
        if self.meta and {k: v for k, v in meta.items() if k != "data"} != {
            k: v for k, v in self.meta.items() if k != "data"
        }:
            raise VidchatError(
                f"{root}: tokens from different tokenizer settings than {self.roots[0]}"
            )
        self.meta = self.meta or meta
        indexes = []
        for w, n, path in _committed_indexes(root):
            index = read_index(path)
            check_shard(root, index, full=False)  # size now; sha256 on first read
            if index["shard"]:
                self._expected[root / index["shard"]] = index
            for key, entry in index["references"].items():
                self._refs.setdefault(key, (root, index["shard"], entry))
            indexes.append((w, n, index))
        for clip_id, entry in newest(indexes).items():  # a redone clip: its newest entry
            if clip_id in self._sources:
                raise VidchatError(
                    f"clip {clip_id!r} is in two shard sets: {self._sources[clip_id][0]} and {root}"
                )
            self._sources[clip_id] = (root, entry.source)
            if entry.failure is not None:
                self._failures.append(entry.failure)
            else:
                self._clips[clip_id] = (root, entry.shard, entry.entry)

    def _array(self, root: Path, shard: str) -> np.ndarray:
        path = root / shard
        arr = self._arrays.get(path)
        if arr is None:
            if path in self._expected:
                check_shard(root, self._expected[path])
            try:
                arr = np.load(path, mmap_mode="r" if self.mmap else None)
            except (OSError, ValueError, EOFError) as exc:
                raise VidchatError(f"{path}: unreadable shard file ({exc}); {RERUN}") from exc
            self._arrays[path] = arr
        return arr

    def _slice(self, root: Path, shard: str, entry: dict[str, Any]) -> np.ndarray:
        shape = entry["shape"]
        size = int(np.prod(shape))
        flat = self._array(root, shard)[entry["offset"] : entry["offset"] + size]
        return np.array(flat).reshape(shape)

    def ids(self) -> list[str]:
        return sorted(self._clips)

    def __len__(self) -> int:
        return len(self._clips)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._clips

    def __getitem__(self, clip_id: str) -> TokenizedClip:
        try:
            root, shard, entry = self._clips[clip_id]
        except KeyError:
            raise KeyError(
                f"clip {clip_id!r} is not in the token shards {[str(r) for r in self.roots]}"
            ) from None
        meta = entry["meta"]
        ref_key = meta.get("reference")
        return TokenizedClip(
            clip_id=clip_id,
            video=self._slice(root, shard, entry["video"]),
            audio=self._slice(root, shard, entry["audio"]),
            meta=meta,
            reference=self.reference(ref_key) if ref_key in self._refs else None,
        )

    def reference(self, key: str) -> np.ndarray:
        """Codes `[h,w]` of a reference image by its key (see `TokenizedClip.meta["reference"]`)."""
        root, shard, entry = self._refs[key]
        return self._slice(root, shard, entry)

    def reference_keys(self) -> list[str]:
        return sorted(self._refs)

    def source(self, clip_id: str) -> dict[str, Any] | None:
        """The source signature the clip (or its failure) was made from; None when the set
        predates signatures. KeyError for a clip the set does not hold."""
        return self._sources[clip_id][1]

    def failures(self) -> list[dict[str, str]]:
        """Clips that could not be decoded: `{clip_id, path, error}` each."""
        return list(self._failures)
