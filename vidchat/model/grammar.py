"""The generation grammar: which token may come at each position of a generated responder turn.

Derived from the token plan (`vidchat.model.plan`), so generation always produces the order that
training laid out: a chunk boundary (`<chunk>` or `<eot>`), then the chunk's slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vidchat.errors import ConfigError
from vidchat.model.plan import TokenPlan
from vidchat.model.vocab import Modality, Vocab


@dataclass
class ResponderGrammar:
    """Allowed next token and metadata for every position n of a generated responder segment.

    Position 0 is the token right after `<responder>`. All `[N]` long tensors, N = the longest
    responder segment (`max_chunks` full chunks plus `<eot>`). Token n must lie in
    `[lo[n], hi[n])`; `slots[n]` is its slot (so the model input at position n-1 is `slots[n]`);
    `modality[n]` picks the sampling settings; `frame[n]` / `codebook[n]` place a code in its
    stream (-1 where not applicable, as in `LaidOutSequence`); `chunk_starts[i]` is the position
    of chunk i's `<chunk>` marker (`chunk_starts[max_chunks]` the closing `<eot>`).
    """

    lo: Tensor
    hi: Tensor
    slots: Tensor
    modality: Tensor
    frame: Tensor
    codebook: Tensor
    depth: Tensor
    """Place within the backbone step (0 starts a step), as in `LaidOutSequence.depth`."""
    chunk_starts: list[int]

    def __len__(self) -> int:
        return self.lo.numel()

    def with_audio(self, codes: Tensor, vocab: Vocab) -> ResponderGrammar:
        """The same grammar with every audio step fixed to `codes [K]` (one code per codebook).
        With the codec's codes for silence this is a listening turn: the listening branch
        trains the responder's face on its silent voice, and in a frame-interleaved chunk each
        frame is drawn right after its audio, so the face is drawn as a listener's."""
        audio = self.modality == int(Modality.AUDIO)
        book = self.codebook[audio]
        fixed = vocab.audio_offset(0) + book * vocab.audio_codebook_size + codes.cpu()[book]
        lo, hi = self.lo.clone(), self.hi.clone()
        lo[audio], hi[audio] = fixed, fixed + 1
        return ResponderGrammar(
            lo,
            hi,
            self.slots,
            self.modality,
            self.frame,
            self.codebook,
            self.depth,
            chunk_starts=self.chunk_starts,
        )


def _boundary(i: int, max_chunks: int) -> tuple[int, int]:
    """Allowed range at chunk i's boundary: `<chunk>` first, `<eot>` once the budget is spent,
    else either (they are adjacent ids)."""
    if i == 0:
        return Vocab.chunk, Vocab.chunk + 1  # at least one chunk
    if i == max_chunks:
        return Vocab.eot, Vocab.eot + 1
    return Vocab.eot, Vocab.chunk + 1


def responder_grammar(plan: TokenPlan, vocab: Vocab, max_chunks: int) -> ResponderGrammar:
    """The grammar of a responder turn of at most `max_chunks` full chunks."""
    if max_chunks < 1:
        raise ConfigError(f"max_chunks must be >= 1, got {max_chunks}")
    size = vocab.audio_codebook_size
    pieces: list[Tensor] = []  # [7,n] blocks: lo, hi, slot, modality, frame, codebook, depth
    starts, n = [], 0
    for i in range(max_chunks + 1):
        starts.append(n)
        lo, hi = _boundary(i, max_chunks)
        pieces.append(torch.tensor([[lo], [hi], [0], [int(Modality.SPECIAL)], [-1], [-1], [0]]))
        n += 1
        if i == max_chunks:
            break
        c = plan.chunk(*plan.chunk_span(i))
        video = c.is_video
        code_lo = torch.where(
            video, vocab.video_offset, vocab.audio_offset(0) + c.codebook.clamp(min=0) * size
        )
        code_hi = code_lo + torch.where(video, vocab.video_codebook_size, size)
        pieces.append(
            torch.stack([code_lo, code_hi, c.slot, c.modality, c.frame, c.codebook, c.depth])
        )
        n += len(c)
    cols = torch.cat(pieces, 1)  # [7,N]
    return ResponderGrammar(*cols, chunk_starts=starts)
