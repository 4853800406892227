"""The two tokenizers as one audio-visual codec: a clip's frames and waveform <-> its codes.

The one way any stage turns a clip into codes and back: tokenize (shards), inference (the
partner's turn, the reference face, the generated answer), evaluation (the `tokenized` ceiling)
and tokenizer evaluation all call these, so that batching, devices and dtypes are handled in one
place. Inputs are numpy or torch on any device; codes come back as CPU long tensors, pixels as
`uint8` numpy and waveforms as `float32` numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidchat.tokenizers.base import AudioTokenizer, VideoTokenizer

FRAME_BATCH = 256
"""Frames encoded or decoded per tokenizer call (bounds memory on long clips); a multiple of
every temporal stride, so no group is split."""


def _device(module: torch.nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.inference_mode()
def encode_frames(tokenizer: VideoTokenizer, frames: np.ndarray | Tensor) -> Tensor:
    """frames `[T,H,W,3]` uint8 -> codes `[ceil(T/k),h,w]` long (CPU), k = temporal stride."""
    x = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames)
    dev = _device(tokenizer)
    h, w = tokenizer.spec.grid
    if x.shape[0] == 0:
        return torch.zeros(0, h, w, dtype=torch.long)
    codes = [
        tokenizer.encode(x[i : i + FRAME_BATCH][None].to(dev))[0].cpu()
        for i in range(0, x.shape[0], FRAME_BATCH)
    ]  # each [1,n,h,w] -> [n,h,w]
    return torch.cat(codes).long()


@torch.inference_mode()
def decode_frames(
    tokenizer: VideoTokenizer, codes: Tensor, reference: np.ndarray | Tensor | None = None
) -> np.ndarray:
    """codes `[Tc,h,w]` -> frames `[Tc*k,H,W,3]` uint8, rendered on `reference` `[H,W,3]` uint8
    (the responder's face: a motion tokenizer needs it, an appearance tokenizer ignores it)."""
    if codes.shape[0] == 0:
        return np.zeros((0, *tokenizer.spec.frame_size, 3), np.uint8)
    dev = _device(tokenizer)
    ref = None if reference is None else torch.as_tensor(np.ascontiguousarray(reference)).to(dev)
    out = [
        tokenizer.decode(codes[i : i + FRAME_BATCH][None].to(dev), reference=ref)[0].cpu().numpy()
        for i in range(0, codes.shape[0], FRAME_BATCH)
    ]
    return np.concatenate(out)


@torch.inference_mode()
def encode_audio(tokenizer: AudioTokenizer, audio: np.ndarray | Tensor) -> Tensor:
    """waveform `[S]` in [-1, 1] -> codes `[K,Ta]` long (CPU)."""
    x = torch.as_tensor(np.asarray(audio, np.float32) if isinstance(audio, np.ndarray) else audio)
    return tokenizer.encode(x.float()[None].to(_device(tokenizer)))[0].cpu().long()


@torch.inference_mode()
def decode_audio(tokenizer: AudioTokenizer, codes: Tensor) -> np.ndarray:
    """codes `[K,Ta]` -> waveform `[Ta*hop]` float32."""
    if codes.shape[-1] == 0:
        return np.zeros(0, np.float32)
    wave = tokenizer.decode(codes[None].to(_device(tokenizer)))[0]
    return wave.float().cpu().numpy()


@dataclass
class ClipCodes:
    """One clip's codes: video `[T,h,w]`, audio `[K,Ta]` (CPU long)."""

    video: Tensor
    audio: Tensor


class ClipCodec:
    """A video tokenizer and an audio codec used together on whole clips."""

    def __init__(self, video: VideoTokenizer, audio: AudioTokenizer) -> None:
        self.video = video.eval()
        self.audio = audio.eval()

    @property
    def fps(self) -> float:
        """Video frames per second the codec reads and writes (code frames x temporal stride)."""
        return self.video.spec.pixel_frame_rate

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self.video.spec.frame_size)  # type: ignore[return-value]

    @property
    def sample_rate(self) -> int:
        return int(self.audio.spec.sample_rate)

    def encode_clip(self, frames: np.ndarray | Tensor, audio: np.ndarray | Tensor) -> ClipCodes:
        """frames `[T,H,W,3]` uint8 and waveform `[S]` (at `fps`, `frame_size`, `sample_rate`)
        -> their codes."""
        return ClipCodes(encode_frames(self.video, frames), encode_audio(self.audio, audio))

    def decode_clip(
        self, codes: ClipCodes, reference: np.ndarray | Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Codes (and the face they are rendered on, `decode_frames`) -> (frames `[T,H,W,3]`
        uint8, waveform `[Ta*hop]` float32)."""
        frames = decode_frames(self.video, codes.video, reference)
        return frames, decode_audio(self.audio, codes.audio)

    def round_trip(
        self,
        frames: np.ndarray | Tensor,
        audio: np.ndarray | Tensor,
        reference: np.ndarray | Tensor | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A clip through encode then decode: what any LM over these codes can reach at best
        (as many frames as went in, also when a temporal stride groups them). `reference`: the
        face a motion tokenizer renders on (default: the clip's first frame)."""
        if reference is None and self.video.needs_reference and len(frames):
            reference = frames[0]
        out_frames, out_audio = self.decode_clip(self.encode_clip(frames, audio), reference)
        return out_frames[: len(frames)], out_audio
