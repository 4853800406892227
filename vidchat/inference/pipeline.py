"""The responder pipeline: a partner's clip in, the responder's frames and voice out, chunk by chunk.

    partner Clip ──tokenizers──► Segment(partner, video [T,h,w], audio [K,Ta])
    reference face [H,W,3] ──video tokenizer──► ref codes [h,w]
    SequenceLayout.prompt ──stream_chunks (KV cache)──► responder codes, one chunk at a time
    ──decode──► ResponseChunk(frames [t,H,W,3] uint8, audio [s] float32)

`ResponderPipeline.stream` yields each decoded chunk as soon as the model has finished it, so a
caller can write or play it while the next one is being generated. Audio is decoded from all the
responder's audio codes so far (up to `audio_context_seconds`) and only the new samples are kept:
with a causal codec (EnCodec's convolutions and LSTM are causal) the streamed waveform equals the
waveform decoded in one go, and a chunk boundary leaves no click.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event

import numpy as np
import torch

from vidchat.data.lm_dataset import tail_codes
from vidchat.data.records import ClipRecord, read_record
from vidchat.errors import VidchatError
from vidchat.media import Clip, read_image
from vidchat.model.generate import SamplingConfig, generate, stream_chunks
from vidchat.model.layout import Segment, SequenceLayout
from vidchat.model.runner import EAGER, StepRunner
from vidchat.model.transformer import VidChatLM
from vidchat.model.vocab import Role
from vidchat.tokenizers.base import AudioTokenizer, VideoTokenizer
from vidchat.tokenizers.codec import (
    ClipCodec,
    decode_audio,
    decode_frames,
    encode_audio,
    encode_frames,
)


@dataclass
class ResponseChunk:
    """One decoded responder chunk."""

    index: int
    frames: np.ndarray  # [t,H,W,3] uint8
    audio: np.ndarray  # [s] float32


@dataclass
class Response:
    """A whole decoded response, with the timings of the run that made it."""

    frames: np.ndarray  # [T,H,W,3] uint8
    audio: np.ndarray  # [S] float32
    fps: float
    sample_rate: int
    video_codes: torch.Tensor  # [T,h,w]
    audio_codes: torch.Tensor  # [K,Ta]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.frames.shape[0] / self.fps


@dataclass
class StreamStats:
    """Filled while `ResponderPipeline.stream` runs: latency and real-time factor."""

    started: float = 0.0
    first_chunk_s: float | None = None
    compute_s: float = 0.0
    output_s: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of output (< 1 is faster than real time)."""
        return self.compute_s / self.output_s if self.output_s else float("inf")


class ResponderPipeline:
    """Everything `infer.py` needs: the LM, its layout, both tokenizers and a default reference."""

    def __init__(
        self,
        model: VidChatLM,
        layout: SequenceLayout,
        video_tokenizer: VideoTokenizer,
        audio_tokenizer: AudioTokenizer,
        reference: np.ndarray | None = None,
        audio_context_seconds: float = 10.0,
        partner_seconds: float | None = None,
        runner: StepRunner = EAGER,
    ) -> None:
        """partner_seconds: the partner's turn is answered from its last N seconds, as the LM
        was trained (`stage.max_segment_seconds`, recorded in the checkpoint); None = all.
        runner: how the decode steps run (`--decode`: eager, or compiled once and replayed)."""
        check_compatible(layout, video_tokenizer, audio_tokenizer)
        self.model = model.eval()
        self.layout = layout
        self.codec = ClipCodec(video_tokenizer, audio_tokenizer)
        self.video_tokenizer = self.codec.video
        self.audio_tokenizer = self.codec.audio
        self.default_reference = reference
        self.audio_context_seconds = audio_context_seconds
        self.partner_seconds = partner_seconds
        self.runner = runner
        self._silence: torch.Tensor | None = None

    # ---- input side ---------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return self.codec.fps

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.codec.frame_size

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    def read_partner(self, source: str | Path | ClipRecord) -> Clip:
        """Decode a partner clip (a file, or a manifest record's window and crop) at the
        tokenizers' fps, frame size and sample rate."""
        record = (
            source if isinstance(source, ClipRecord) else ClipRecord(Path(source).stem, str(source))
        )
        return read_record(record, fps=self.fps, size=self.frame_size, sample_rate=self.sample_rate)

    def read_reference(self, path: str | Path) -> np.ndarray:
        """A responder face image -> `[H,W,3] uint8` at the tokenizer's frame size."""
        return read_image(path, size=self.frame_size)

    def encode_partner(self, clip: Clip) -> Segment:
        """Partner clip -> its turn as codes: video `[T,h,w]`, audio `[K,Ta]` (the last
        `partner_seconds`, cut from the codes as training cuts them)."""
        codes = self.codec.encode_clip(clip.frames, clip.audio)
        video, audio = codes.video, codes.audio
        if self.partner_seconds is not None:
            video, audio = tail_codes(video, audio, self.partner_seconds, self.layout.cfg)
        return Segment(Role.PARTNER, video, audio)

    def reference_image(self, image: np.ndarray | None) -> np.ndarray:
        """The responder's face `[H,W,3]`: `image`, else the checkpoint's default."""
        image = self.default_reference if image is None else image
        if image is None:
            raise VidchatError(
                "no reference face: pass --reference face.png (this checkpoint has no default)"
            )
        return image

    def encode_reference(self, image: np.ndarray | None) -> torch.Tensor:
        """Reference face `[H,W,3]` (or the default one) -> codes `[h,w]`."""
        return encode_frames(self.codec.video, self.reference_image(image)[None])[0]

    def prompt(self, clip: Clip, reference: np.ndarray | None = None):
        return self.layout.prompt([self.encode_partner(clip)], ref=self.encode_reference(reference))

    def unconditional(
        self, references: Sequence[np.ndarray | None], sampling: SamplingConfig | None
    ) -> list | None:
        """With `sampling.guidance`, each answer's prompt without its partner (the reference
        alone, as the `single` branch trains it); else None."""
        if sampling is None or not sampling.guided:
            return None
        return [self.layout.prompt([], ref=self.encode_reference(r)) for r in references]

    def silence_codes(self) -> torch.Tensor:
        """`[K]`: the audio codec's code for silence in each codebook (the most common code of
        a second of -54 dBFS noise, a quiet room, as a silent listener's track holds)."""
        if self._silence is None:
            quiet = 0.002 * np.random.default_rng(0).standard_normal(self.sample_rate)
            codes = encode_audio(self.audio_tokenizer, quiet.astype(np.float32))  # [K,Ta]
            self._silence = torch.mode(codes, dim=-1).values
        return self._silence

    def max_chunks(self, max_seconds: float) -> int:
        return max(1, int(round(max_seconds / float(self.layout.cfg.chunk_seconds))))

    # ---- output side --------------------------------------------------------------------
    def decode_video(self, codes: torch.Tensor, reference: np.ndarray | None = None) -> np.ndarray:
        """codes `[t,h,w]` -> frames `[t,H,W,3]` uint8, rendered on the responder's face
        (`reference`, else the default: a motion tokenizer draws its codes on it)."""
        return decode_frames(self.codec.video, codes, self.reference_image(reference))

    def decode_audio(self, codes: torch.Tensor) -> np.ndarray:
        """codes `[K,Ta]` -> waveform `[Ta*hop]` float32."""
        return decode_audio(self.codec.audio, codes)

    def stream(
        self,
        clip: Clip,
        reference: np.ndarray | None = None,
        *,
        max_seconds: float = 5.0,
        sampling: SamplingConfig | None = None,
        stats: StreamStats | None = None,
        stop: Event | None = None,
        listening: bool = False,
    ) -> Iterator[ResponseChunk]:
        """Yield the responder's decoded chunks one by one (see the module docstring); `stop`,
        set from another thread, ends the answer between two tokens. `listening` fixes the
        responder's voice to silence (`silence_codes`), as the listening branch trains it, so
        the face listens instead of talking."""
        stats = stats if stats is not None else StreamStats()
        stats.started = time.perf_counter()
        prompt = self.prompt(clip, reference)
        hop = int(self.audio_tokenizer.spec.hop_length)
        context = int(round(self.audio_context_seconds * self.audio_tokenizer.spec.frame_rate))
        audio_codes: list[torch.Tensor] = []
        tick = time.perf_counter()
        for chunk in stream_chunks(
            self.model,
            self.layout,
            prompt,
            self.max_chunks(max_seconds),
            sampling,
            self.unconditional([reference], sampling),
            self.runner,
            stop,
            self.silence_codes() if listening else None,
        ):
            frames = self.decode_video(chunk.video[0], reference)
            new = chunk.audio[0]  # [K,ta]
            audio_codes.append(new)
            codes = torch.cat(audio_codes, dim=-1)  # [K,Ta so far]
            start = max(0, codes.shape[-1] - new.shape[-1] - context)
            wave = self.decode_audio(codes[:, start:])
            audio = wave[len(wave) - new.shape[-1] * hop :] if new.shape[-1] else wave[:0]
            now = time.perf_counter()
            stats.compute_s += now - tick
            stats.output_s += frames.shape[0] / self.fps
            if stats.first_chunk_s is None:
                stats.first_chunk_s = now - stats.started
            yield ResponseChunk(chunk.index, frames, audio)
            tick = time.perf_counter()

    def respond(
        self,
        clip: Clip,
        reference: np.ndarray | None = None,
        *,
        max_seconds: float = 5.0,
        sampling: SamplingConfig | None = None,
    ) -> Response:
        """The whole response at once (codes generated in one call, then decoded)."""
        started = time.perf_counter()
        result = generate(
            self.model,
            self.layout,
            self.prompt(clip, reference),
            self.max_chunks(max_seconds),
            sampling,
            self.unconditional([reference], sampling),
            self.runner,
        )
        return self._response(
            result.video[0],
            result.audio[0],
            {"compute_s": time.perf_counter() - started},
            reference,
        )

    def respond_batch(
        self,
        clips: Sequence[Clip],
        references: Sequence[np.ndarray | None],
        *,
        max_seconds: float = 5.0,
        sampling: SamplingConfig | None = None,
    ) -> list[Response]:
        """Several partner clips through the model at once (left-padded prompts)."""
        started = time.perf_counter()
        prompts = [self.prompt(c, r) for c, r in zip(clips, references, strict=True)]
        result = generate(
            self.model,
            self.layout,
            prompts,
            self.max_chunks(max_seconds),
            sampling,
            unconditional=self.unconditional(references, sampling),
            runner=self.runner,
        )
        per_row = (time.perf_counter() - started) / max(1, len(clips))
        return [
            self._response(v, a, {"compute_s": per_row}, r)
            for v, a, r in zip(result.video, result.audio, references, strict=True)
        ]

    def _response(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        timings: dict[str, float],
        reference: np.ndarray | None,
    ) -> Response:
        frames = self.decode_video(video, reference)
        wave = self.decode_audio(audio)
        return Response(
            frames,
            fit_audio(wave, frames.shape[0], self.fps, self.sample_rate),
            self.fps,
            self.sample_rate,
            video,
            audio,
            timings,
        )


def fit_audio(audio: np.ndarray, num_frames: int, fps: float, sample_rate: int) -> np.ndarray:
    """Trim or zero-pad `audio [S]` to exactly the frames' duration (`round(T/fps*sr)` samples)."""
    n = int(round(num_frames / fps * sample_rate))
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


def check_compatible(layout: SequenceLayout, video: VideoTokenizer, audio: AudioTokenizer) -> None:
    """The LM was trained on codes of exactly these tokenizers: grid, codebooks and rates agree."""
    cfg = layout.cfg
    want = {
        "video grid": (tuple(cfg.video_grid), tuple(video.spec.grid)),
        "video codebook size": (cfg.video_codebook_size, video.spec.codebook_size),
        "video frame rate": (float(cfg.video_frame_rate), float(video.spec.frame_rate)),
        "audio codebooks": (cfg.audio_num_codebooks, audio.spec.num_codebooks),
        "audio codebook size": (cfg.audio_codebook_size, audio.spec.codebook_size),
        "audio frame rate": (float(cfg.audio_frame_rate), float(audio.spec.frame_rate)),
    }
    bad = [f"{k}: checkpoint {a} vs tokenizer {b}" for k, (a, b) in want.items() if a != b]
    if bad:
        raise VidchatError("LM checkpoint does not match the tokenizers (" + "; ".join(bad) + ")")
