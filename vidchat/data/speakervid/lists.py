"""The release's list files and `raw_labels` scores, joined to clips by their name.

- `SFT_set.json`: the paper's SFT clips. Any JSON of clip names (a list, a dict keyed by name,
  entries holding names or paths) is accepted; names are normalised with `stem_of`.
- `testset.json`: VidChatBench. Entries are `{"partner": a, "responder": b}` dicts (also
  `input`/`output`, `query`/`response`, `src`/`tgt`), `[a, b]` lists, or bare clip names (test
  clips without a stated pair). Every source named in it is in the test split.
- `raw_labels/<kind>/...`: per-clip JSON objects of named scores. Which score is which is a
  config mapping (`data.score_keys`, our name -> `key`, `kind/key` or a dotted path
  `kind/a.b`), since the inner format is not public. Non-numeric values are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidchat.data.speakervid.archive import BrokenArchive, iter_members
from vidchat.data.speakervid.names import parse_clip_name, stem_of

DEFAULT_SCORE_KEYS: dict[str, str] = {
    "hand_blur": "hand_blur",
    "face_blur": "face_blur",
    "dover": "dover",
    "motion": "motion",
    "asr_conf": "asr_conf",
}
_PARTNER_KEYS = ("partner", "input", "query", "src", "source_clip")
_RESPONDER_KEYS = ("responder", "output", "response", "tgt", "target_clip")


def clip_names_in(obj: Any) -> set[str]:
    """Release clip names anywhere in a JSON value (strings, list items, dict keys and values)."""
    if isinstance(obj, str):
        return {stem_of(obj)} if parse_clip_name(obj) else set()
    if isinstance(obj, Mapping):
        keys = {stem_of(k) for k in obj if isinstance(k, str) and parse_clip_name(k)}
        return keys.union(*(clip_names_in(v) for v in obj.values()))
    if isinstance(obj, list | tuple):
        return set().union(*(clip_names_in(v) for v in obj))
    return set()


@dataclass
class TestSet:
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (partner stem, responder stem)
    clips: set[str] = field(default_factory=set)  # every clip it names

    @property
    def sources(self) -> set[str]:
        return {n.ytid for c in self.clips if (n := parse_clip_name(c))}


def parse_testset(obj: Any) -> TestSet:
    """`testset.json`'s content -> its pairs and clips (see the module docstring)."""
    entries = list(obj.values()) if isinstance(obj, Mapping) else obj
    out = TestSet()
    for entry in entries if isinstance(entries, list) else []:
        pair = _pair_of(entry)
        if pair is not None:
            out.pairs.append(pair)
        out.clips |= clip_names_in(entry)
    return out


def _pair_of(entry: Any) -> tuple[str, str] | None:
    if isinstance(entry, Mapping):
        a = next((entry[k] for k in _PARTNER_KEYS if isinstance(entry.get(k), str)), None)
        b = next((entry[k] for k in _RESPONDER_KEYS if isinstance(entry.get(k), str)), None)
    elif isinstance(entry, list | tuple) and len(entry) == 2:
        a, b = entry
    else:
        return None
    if isinstance(a, str) and isinstance(b, str) and parse_clip_name(a) and parse_clip_name(b):
        return stem_of(a), stem_of(b)
    return None


def read_raw_scores(
    raw_dir: Path,
    score_keys: Mapping[str, str],
    wanted: Iterable[str] | None = None,
    broken: list[BrokenArchive] | None = None,
    bad: list[str] | None = None,
) -> dict[str, dict[str, float]]:
    """clip stem -> {score name: value} from every `raw_labels/<kind>/` folder.

    `wanted`: only these stems (saves memory on the full release). `bad` collects per-clip
    files that are not JSON objects; they are skipped.
    """
    wanted_set = set(wanted) if wanted is not None else None
    out: dict[str, dict[str, float]] = {}
    if not raw_dir.is_dir():
        return out
    for kind_dir in sorted(p for p in raw_dir.iterdir() if p.is_dir()):
        for member in iter_members(kind_dir, broken):
            if wanted_set is not None and member.stem not in wanted_set:
                continue
            try:
                doc = json.loads(member.data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                doc = None
            if not isinstance(doc, Mapping):
                if bad is not None:
                    bad.append(f"{member.where}: not a JSON object of scores")
                continue
            scores = scores_from(kind_dir.name, doc, score_keys)
            if scores:
                out.setdefault(member.stem, {}).update(scores)
    return out


def scores_from(kind: str, doc: Mapping[str, Any], score_keys: Mapping[str, str]) -> dict:
    out: dict[str, float] = {}
    for name, spec in score_keys.items():
        want_kind, _, path = spec.rpartition("/")
        if want_kind and want_kind != kind:
            continue
        value: Any = doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out
