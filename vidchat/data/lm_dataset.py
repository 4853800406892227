"""LM training data: manifest turns + token shards + sequence layout -> `[B,L]` batches.

- `LMExample`: one training sequence as clip ids (segments with roles, a reference source and
  the loss mode). `examples_for_branch` builds them from manifest records / turn pairs.
- `LMSequenceDataset[i] -> LMItem` (a `LaidOutSequence` + its `[L]` loss mask), read from a
  `CodeStore` (`ShardReader` in practice, a dict in tests).
- `LMCollator`: right padding (`pad`) or greedy packing of whole sequences into rows (`pack`),
  giving the `pad_batch` keys plus a per-sequence `loss_mask` (and, packed, `documents`: which
  sequence each position belongs to, for block-causal attention).
- `ResumableSampler`: the index order is a pure function of (seed, epoch, position), so a
  resumed run skips exactly the samples it consumed and continues with the same order.

Reference frame (`REFERENCE_SOURCES`, `stage.reference`):
- `image`: the reference-image codes stored with the responder's clip when the shards have them,
  else the first video frame of another clip of the same speaker, else the clip's own first frame.
- `other_clip`: always the first frame of a clip of the same speaker from another conversation
  (picked by a hash of the clip id, so a speaker's examples see many of its clips), as a
  reference cut from the person's other footage would be. Its expression has nothing to do
  with the answer's, whereas a stored image that always shows one pose (the demo world's
  neutral face) invites the model to copy that pose. On the demo world it did not, by itself,
  make the answers mirror the partner's expression (README, "Emotion, what has been tried").
The choice is made once, deterministically, when examples are built.
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from vidchat.errors import ConfigError
from vidchat.model.documents import pack_documents
from vidchat.model.layout import LOSS_MODES, LaidOutSequence, Segment, SequenceLayout
from vidchat.model.vocab import Role

BATCH_KEYS = (
    "tokens",
    "next_slots",
    "roles",
    "modality",
    "slots",
    "segment",
    "chunk",
    "frame",
    "row",
    "col",
    "codebook",
    "depth",
)
_FILL_MINUS_ONE = {"segment", "chunk", "frame", "row", "col", "codebook", "documents"}
BATCHING_MODES = ("pad", "pack")
REFERENCE_SOURCES = ("image", "other_clip")


class CodeStore(Protocol):
    """Where token codes come from (`vidchat.data.shards.ShardReader` satisfies it)."""

    def __getitem__(self, clip_id: str) -> Any:
        """An object with `.video [T,h,w]` and `.audio [K,Ta]` integer codes."""


@dataclass(frozen=True)
class RefSource:
    """The responder's reference: the reference-image codes stored with clip `clip_id` when the
    shards have them, else frame 0 of clip `fallback` (another clip of the same speaker, or the
    clip itself)."""

    clip_id: str
    fallback: str
    use_image: bool = True


@dataclass(frozen=True)
class LMExample:
    """One sequence: `segments` = ((role, clip_id), ...) in time order, the current turn last."""

    segments: tuple[tuple[Role, str], ...]
    ref: RefSource | None
    loss_mode: str
    branch: str = ""

    def __post_init__(self) -> None:
        if self.loss_mode not in LOSS_MODES:
            raise ConfigError(f"loss mode must be one of {LOSS_MODES}, got {self.loss_mode!r}")


@dataclass
class LMItem:
    seq: LaidOutSequence
    loss_mask: Tensor  # [L] bool


# ---- examples from the manifest ----------------------------------------------------------------
@dataclass
class ReferencePicker:
    """Chooses each responder's reference source (`source`: see the module docstring)."""

    clips_by_speaker: Mapping[str, Sequence[str]]
    source: str = "image"
    conversation_of: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in REFERENCE_SOURCES:
            raise ConfigError(
                f"stage.reference must be one of {list(REFERENCE_SOURCES)}, got {self.source!r}"
            )

    def __call__(self, speaker_id: str | None, clip_id: str) -> RefSource:
        others = sorted(c for c in self.clips_by_speaker.get(str(speaker_id), ()) if c != clip_id)
        if self.source == "image":
            return RefSource(clip_id, others[0] if others else clip_id)
        conv = self.conversation_of.get(clip_id)
        others = [c for c in others if self.conversation_of.get(c) != conv] or others
        pick = others[zlib.crc32(clip_id.encode()) % len(others)] if others else clip_id
        return RefSource(clip_id, pick, use_image=False)


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def single_examples(
    records: Sequence[Any], refs: ReferencePicker, loss_mode: str
) -> list[LMExample]:
    """Single branch: reference + the speaker's own clip as the responder segment."""
    out = []
    for r in records:
        cid = _attr(r, "clip_id")
        ref = refs(_attr(r, "speaker_id"), cid)
        out.append(LMExample(((Role.RESPONDER, cid),), ref, loss_mode, "single"))
    return out


def pair_examples(pairs: Sequence[Any], refs: ReferencePicker, loss_mode: str) -> list[LMExample]:
    """Dialogue / listening / multi-turn: history, partner, then responder (the responder's
    earlier turns in the history keep the responder role, everyone else is a partner)."""
    out = []
    for p in pairs:
        partner, responder = _attr(p, "partner"), _attr(p, "responder")
        me = _attr(responder, "speaker_id")
        segs: list[tuple[Role, str]] = []
        for h in _attr(p, "history", None) or []:
            role = (
                Role.RESPONDER if me is not None and _attr(h, "speaker_id") == me else Role.PARTNER
            )
            segs.append((role, _attr(h, "clip_id")))
        segs += [
            (Role.PARTNER, _attr(partner, "clip_id")),
            (Role.RESPONDER, _attr(responder, "clip_id")),
        ]
        ref = refs(me, _attr(responder, "clip_id"))
        out.append(LMExample(tuple(segs), ref, loss_mode, str(_attr(p, "branch", ""))))
    return out


def reference_picker(records: Sequence[Any], source: str = "image") -> ReferencePicker:
    """A `ReferencePicker` over every clip in `records` (fallback frames come from these, and
    their `conversation` keeps `other_clip` out of the answer's own conversation)."""
    by_speaker: dict[str, list[str]] = defaultdict(list)
    conversation_of: dict[str, str] = {}
    for r in records:
        sid, cid, conv = _attr(r, "speaker_id"), _attr(r, "clip_id"), _attr(r, "conversation")
        if sid is not None:
            by_speaker[str(sid)].append(cid)
        if conv is not None:
            conversation_of[cid] = str(conv)
    return ReferencePicker(dict(by_speaker), source, conversation_of)


# ---- dataset -----------------------------------------------------------------------------------
class LMSequenceDataset(Dataset):
    """`[i] -> LMItem`: codes from `store`, laid out by `layout`, cropped and truncated.

    max_segment_seconds: crop each turn to N seconds (None = whole clip): the last turn (the one
        being learnt) to its first N seconds, the turns before it to their last N seconds, the
        part that leads into the next turn. Inference crops the partner's turn the same way
        (`ResponderPipeline.partner_seconds`, recorded in the checkpoint), so that an answer
        follows the context it was trained after.
    max_seq_len: hard cap on tokens (longer sequences are cut at the end).
    """

    def __init__(
        self,
        examples: Sequence[LMExample],
        store: CodeStore,
        layout: SequenceLayout,
        *,
        max_seq_len: int,
        max_segment_seconds: float | None = None,
    ) -> None:
        self.examples = list(examples)
        self.store = store
        self.layout = layout
        self.max_seq_len = int(max_seq_len)
        self.max_segment_seconds = max_segment_seconds

    def __len__(self) -> int:
        return len(self.examples)

    def _codes(self, clip_id: str, last: bool) -> tuple[Tensor, Tensor]:
        """A turn's codes, cropped: its head when it is the sequence's last turn, else its tail."""
        clip = self.store[clip_id]
        video, audio = torch.as_tensor(_int64(clip.video)), torch.as_tensor(_int64(clip.audio))
        if self.max_segment_seconds is not None:
            crop = head_codes if last else tail_codes
            video, audio = crop(video, audio, self.max_segment_seconds, self.layout.cfg)
        return video.long(), audio.long()

    def _ref(self, ref: RefSource | None) -> Tensor | None:
        if ref is None:
            return None
        image = getattr(self.store[ref.clip_id], "reference", None) if ref.use_image else None
        if image is not None:
            return torch.as_tensor(_int64(image))
        video = _int64(self.store[ref.fallback].video)
        return torch.as_tensor(video[0]) if len(video) else None

    def __getitem__(self, i: int) -> LMItem:
        ex = self.examples[i]
        n = len(ex.segments)
        segments = [
            Segment(role, *self._codes(cid, k == n - 1))
            for k, (role, cid) in enumerate(ex.segments)
        ]
        seq = self.layout.build(segments, ref=self._ref(ex.ref))
        mask = seq.loss_mask(ex.loss_mode)
        if len(seq) > self.max_seq_len:
            seq, mask = truncate(seq, self.max_seq_len), mask[: self.max_seq_len]
        return LMItem(seq, mask)


def head_codes(video: Tensor, audio: Tensor, seconds: float, cfg) -> tuple[Tensor, Tensor]:
    """The first `seconds` of a turn's codes: video `[T,h,w]`, audio `[K,Ta]`."""
    return (
        video[: math.floor(seconds * cfg.video_frame_rate)],
        audio[:, : math.floor(seconds * cfg.audio_frame_rate)],
    )


def tail_codes(video: Tensor, audio: Tensor, seconds: float, cfg) -> tuple[Tensor, Tensor]:
    """The last `seconds` of a turn's codes (the same counts as `head_codes`, from the end)."""
    nv = min(len(video), math.floor(seconds * cfg.video_frame_rate))
    na = min(audio.shape[1], math.floor(seconds * cfg.audio_frame_rate))
    return video[len(video) - nv :], audio[:, audio.shape[1] - na :]


def _int64(codes: Any) -> Any:
    """uint16 numpy codes -> int64 (torch has no uint16 arithmetic); tensors pass through."""
    return codes.astype("int64") if hasattr(codes, "astype") else codes.long()


def truncate(seq: LaidOutSequence, length: int) -> LaidOutSequence:
    """The first `length` tokens of `seq` (metadata cut alike)."""
    kw = {k: getattr(seq, k)[:length] for k in BATCH_KEYS}
    return LaidOutSequence(ref_end=min(seq.ref_end, length), **kw)


# ---- batching ----------------------------------------------------------------------------------
def item_row(item: LMItem) -> dict[str, Tensor]:
    """One sequence as a dict of `[L]` tensors (the batch keys, `valid`, `loss_mask`)."""
    row = {k: getattr(item.seq, k) for k in BATCH_KEYS}
    row["valid"] = torch.ones(len(item.seq), dtype=torch.bool)
    row["loss_mask"] = item.loss_mask.bool()
    return row


def stack_rows(rows: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Right-pad `[L]` rows into `[B,L]` tensors (pad token 0, metadata -1, masks False)."""
    L = max(r["tokens"].numel() for r in rows)
    out = {}
    for key in rows[0]:
        fill = -1 if key in _FILL_MINUS_ONE else 0
        dtype = rows[0][key].dtype
        batch = torch.full((len(rows), L), fill, dtype=dtype)
        for b, r in enumerate(rows):
            batch[b, : r[key].numel()] = r[key]
        out[key] = batch
    return out


def pack_rows(rows: Sequence[dict[str, Tensor]], max_len: int) -> list[dict[str, Tensor]]:
    """Greedily concatenate whole sequences into rows of at most `max_len` tokens (first fit,
    in order). Each row gets `documents` `[L]`, the index of the sequence at each position: the
    model attends block-causally within each one (`vidchat.model.documents`), so a packed
    sequence is computed as it would be alone."""
    packed: list[list[dict[str, Tensor]]] = []
    lengths: list[int] = []
    for r in rows:
        n = r["tokens"].numel()
        for j, used in enumerate(lengths):
            if used + n <= max_len:
                packed[j].append(r)
                lengths[j] += n
                break
        else:
            packed.append([r])
            lengths.append(n)
    return [
        {
            **{k: torch.cat([r[k] for r in group]) for k in group[0]},
            "documents": pack_documents([r["tokens"].numel() for r in group]),
        }
        for group in packed
    ]


@dataclass
class LMCollator:
    """Collate `LMItem`s into a `[B,L]` batch by right padding (`pad`) or packing (`pack`)."""

    mode: str = "pad"
    max_seq_len: int = 4096

    def __post_init__(self) -> None:
        if self.mode not in BATCHING_MODES:
            raise ConfigError(f"stage.batching must be one of {BATCHING_MODES}, got {self.mode!r}")

    def __call__(self, items: Sequence[LMItem]) -> dict[str, Tensor]:
        rows = [item_row(it) for it in items]
        if self.mode == "pack":
            rows = pack_rows(rows, self.max_seq_len)
        return stack_rows(rows)


# ---- sampling ----------------------------------------------------------------------------------
class ResumableSampler(Sampler[int]):
    """Deterministic, distributed, resumable index stream over a whole run.

    Global sample position p maps to epoch p // n and index perm(seed, epoch)[p % n]; rank r of
    `world_size` takes positions k * world_size + r. `__len__` counts the whole run
    (`samples_per_rank`) so Lightning's restored batch counter lines up; iteration starts at
    `start` (samples this rank already consumed) and yields `samples_per_rank - start` indices.
    """

    def __init__(
        self,
        num_items: int,
        *,
        samples_per_rank: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        start: int = 0,
    ) -> None:
        if num_items <= 0:
            raise ConfigError("the training set is empty; check the data config and the manifest")
        self.num_items = num_items
        self.samples_per_rank = int(samples_per_rank)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.shuffle = shuffle
        self.start = int(start)
        self._perm_epoch = -1
        self._perm: list[int] = []

    def __len__(self) -> int:
        return self.samples_per_rank

    def _index(self, position: int) -> int:
        epoch, i = divmod(position, self.num_items)
        if not self.shuffle:
            return i
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.num_items, generator=g).tolist()
            self._perm_epoch = epoch
        return self._perm[i]

    def __iter__(self) -> Iterator[int]:
        for k in range(self.start, self.samples_per_rank):
            yield self._index(k * self.world_size + self.rank)
