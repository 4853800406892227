"""Turns into training pairs: the four branches, the SFT/pretrain subset, branch filters.

The paper's SFT thresholds live here and only here (`SFT_THRESHOLDS`); a data config's
`thresholds` overrides them for one run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from vidchat.data.records import ClipRecord, TurnPair
from vidchat.errors import ConfigError

SFT_THRESHOLDS: dict[str, float] = {
    "hand_blur": 0.5,
    "face_blur": 0.7,
    "dover": 0.6,
    "motion": 2.0,
    "asr_conf": -1.0,
}


def is_sft(record: ClipRecord, thresholds: Mapping[str, float] | None = None) -> bool:
    """SFT quality. With a release SFT list (`labels["sft_set"]` present): listed, and every
    score the clip has above its threshold. Without one: every threshold's score present and
    above it (a missing score fails)."""
    thresholds = SFT_THRESHOLDS if thresholds is None else thresholds
    listed = record.labels.get("sft_set")
    if listed is not None and not listed:
        return False
    return all(
        float(record.scores[key]) > float(value) if key in record.scores else listed is not None
        for key, value in thresholds.items()
    )


def select_subset(
    records: Iterable[ClipRecord], subset: str, thresholds: Mapping[str, float] | None = None
) -> list[ClipRecord]:
    """`"sft"`: records passing the paper's SFT thresholds (hand blur > 0.5, face blur > 0.7,
    DOVER > 0.6, motion > 2, ASR conf > -1); `"pretrain"`: the rest; `"all"`: everything."""
    if subset == "all":
        return list(records)
    if subset not in ("sft", "pretrain"):
        raise ConfigError(f"data.subset must be 'all', 'sft' or 'pretrain', got {subset!r}")
    want = subset == "sft"
    return [r for r in records if is_sft(r, thresholds) == want]


def pair_turns(
    records: Iterable[ClipRecord],
    history_turns: int = 2,
    history_seconds: float = 60.0,
    max_gap_seconds: float | None = None,
) -> list[TurnPair]:
    """Make turn pairs within each conversation, in time order.

    - `dialogue`: each talking clip -> the next talking clip, when it is a different speaker's
      and starts at most `max_gap_seconds` after the partner's turn ends (None: any gap).
    - `multi_turn`: the same pair, with up to `history_turns` earlier talking clips that start
      within `history_seconds` before the partner's turn as history (only when there are any).
    - `listening`: a silent listener clip <- the other person's talking clip that overlaps it
      most in time; with scene labels (`labels["scene"]`, the release's), one of the same scene.
    """
    by_conversation: dict[str, list[ClipRecord]] = defaultdict(list)
    for record in records:
        by_conversation[record.conversation].append(record)
    pairs: list[TurnPair] = []
    for conversation in sorted(by_conversation):
        clips = sorted(by_conversation[conversation], key=lambda r: (r.time, r.clip_id))
        talking = [r for r in clips if r.is_talking]
        for i in range(1, len(talking)):
            partner, responder = talking[i - 1], talking[i]
            if partner.speaker_id == responder.speaker_id or (
                max_gap_seconds is not None
                and responder.time - (partner.time + _span(partner)) > max_gap_seconds
            ):
                continue
            pairs.append(_pair("dialogue", partner, responder, []))
            earlier = (
                [r for r in talking[: i - 1] if r.time >= partner.time - history_seconds][
                    -history_turns:
                ]
                if history_turns > 0
                else []
            )
            if earlier:
                pairs.append(_pair("multi_turn", partner, responder, earlier))
        for listener in (r for r in clips if not r.is_talking):
            best = _listening_partner(listener, talking)
            if best is not None:
                pairs.append(_pair("listening", best, listener, []))
    return pairs


def _listening_partner(listener: ClipRecord, talking: list[ClipRecord]) -> ClipRecord | None:
    scene = listener.labels.get("scene")
    candidates = [
        r
        for r in talking
        if not listener.speaker_id
        or r.speaker_id != listener.speaker_id
        and (scene is None or r.labels.get("scene") == scene)
    ]
    best = max(candidates, key=lambda r: _overlap(r, listener), default=None)
    if best is None or (scene is None and _overlap(best, listener) <= 0):
        return None
    return best


def _span(record: ClipRecord) -> float:
    """Clip length in seconds: the read window, else the annotation's `duration` label."""
    return float(record.duration or record.labels.get("duration") or 0.0)


def _overlap(a: ClipRecord, b: ClipRecord) -> float:
    da, db = _span(a), _span(b)
    return min(a.time + da, b.time + db) - max(a.time, b.time)


def _pair(
    branch: str, partner: ClipRecord, responder: ClipRecord, history: list[ClipRecord]
) -> TurnPair:
    return TurnPair(
        pair_id=f"{branch}__{partner.clip_id}__{responder.clip_id}",  # filename-safe
        branch=branch,
        partner=partner,
        responder=responder,
        history=history,
        reference=responder.reference,
    )
