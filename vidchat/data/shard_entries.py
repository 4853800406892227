"""Which entry of a shard set is a clip's: the newest.

A clip is written again when its files changed since it was tokenized, or when it failed and is
retried (`vidchat.training.tokenize.stage`); its earlier entry stays in its shard, and the writer and
every reader take the entry committed last. Each entry carries the source signature it was made
from (`vidchat.data.records.source_signature`; None in sets written before signatures).
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Latest(NamedTuple):
    """A clip's newest entry: its codes' place (or its failure) and what it was made from."""

    source: dict[str, Any] | None
    failure: dict[str, str] | None = None
    entry: dict[str, Any] | None = None
    shard: str | None = None
    worker: int = 0


def commit_order(worker: int, number: int, index: dict[str, Any]) -> tuple[int, int, int]:
    """The order indexes were committed in (sets written before commit times were kept never
    hold a clip twice, so their order does not matter)."""
    return index.get("committed_ns", 0), worker, number


def entries_of(index: dict[str, Any], worker: int) -> dict[str, Latest]:
    """clip_id -> its entry in one index (a failure after a clip of the same id wins)."""
    out = {
        cid: Latest(e["meta"].get("source"), None, e, index["shard"], worker)
        for cid, e in index["clips"].items()
    }
    for failure in index["failures"]:
        out[failure["clip_id"]] = Latest(failure.get("source"), failure, None, None, worker)
    return out


def is_current(
    latest: Latest | None, source: dict[str, Any] | None, retry_failed: bool = False
) -> bool:
    """The clip needs no new entry: it has one (tokenized, or failed unless `retry_failed`)
    made from `source` (None: from anything; an entry from before signatures stands)."""
    if latest is None or (retry_failed and latest.failure is not None):
        return False
    return source is None or latest.source is None or latest.source == source


def newest(indexes: list[tuple[int, int, dict[str, Any]]]) -> dict[str, Latest]:
    """clip_id -> its newest entry over (worker, number, index) triples."""
    latest: dict[str, Latest] = {}
    for worker, _, index in sorted(indexes, key=lambda i: commit_order(*i)):
        latest.update(entries_of(index, worker))
    return latest
