"""What one web-demo request does, without Gradio: check the upload, pick the reference face,
stream the answer chunk by chunk (live frames, then the whole side-by-side mp4).

Kept apart from the page (`app.py`) so that tests and the benchmark drive it directly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidchat.data.records import sibling_wav
from vidchat.errors import VidchatError
from vidchat.inference.pipeline import ResponderPipeline, StreamStats
from vidchat.media import MediaError, crop_resize, probe
from vidchat.media.stream_writer import ClipStreamWriter
from vidchat.model.generate import TOKEN_KINDS, SamplingConfig

DEFAULT_FACE = "checkpoint default"
UPLOADED_FACE = "uploaded image"


class DemoInputError(VidchatError):
    """A bad upload or setting: shown on the page as one message; the server keeps serving."""


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float
    max_input_seconds: float
    max_answer_seconds: float


def check_partner(path: str | Path | None, limits: Limits) -> Path:
    """The partner clip a person gave -> its path, or DemoInputError saying what is wrong."""
    if not path:
        raise DemoInputError("record or upload a turn, or pick a demo partner turn, first")
    path = Path(path)
    if not path.is_file():
        raise DemoInputError(f"{path.name}: the uploaded file is gone; upload it again")
    size_mb = path.stat().st_size / 2**20
    if size_mb > limits.max_upload_mb:
        raise DemoInputError(
            f"{path.name}: {size_mb:.1f} MB is over the {limits.max_upload_mb:g} MB upload limit"
        )
    try:
        info = probe(path)
    except MediaError as exc:
        raise DemoInputError(f"{path.name}: not a video file that can be read") from exc
    if info.fps is None:
        raise DemoInputError(f"{path.name}: has no video stream")
    if info.sample_rate is None and sibling_wav(path) is None:
        raise DemoInputError(f"{path.name}: has no audio; the responder answers what it hears")
    if info.duration is None or not info.duration > 0:
        raise DemoInputError(f"{path.name}: has no readable duration")
    if info.duration > limits.max_input_seconds:
        raise DemoInputError(
            f"{path.name}: {info.duration:.1f} s is longer than the "
            f"{limits.max_input_seconds:g} s limit for a turn"
        )
    return path


def pick_reference(
    pipe: ResponderPipeline, choice: str | None, upload: str | None, refs_dir: Path | None
) -> np.ndarray | None:
    """The responder's face: the checkpoint's default, a demo identity (`refs/<name>.png`), or
    an uploaded image."""
    if not choice or choice == DEFAULT_FACE:
        if pipe.default_reference is None:
            raise DemoInputError("this checkpoint has no default face: pick or upload one")
        return None
    if choice == UPLOADED_FACE:
        if not upload:
            raise DemoInputError("upload a reference face image first")
        path = Path(upload)
    else:
        if refs_dir is None or Path(choice).name != choice:  # a name from the list, not a path
            raise DemoInputError(f"unknown face {choice!r}")
        path = refs_dir / f"{choice}.png"
    try:
        return pipe.read_reference(path)
    except (MediaError, OSError) as exc:
        raise DemoInputError(f"{path.name}: not an image that can be read") from exc


def sampling_config(temperature: float, top_k: float, top_p: float, seed: float) -> SamplingConfig:
    """The sampling sliders (the same for every token kind) -> a `SamplingConfig`, which checks
    them as it checks infer's flags and the eval config: a bad value is its one `ConfigError`
    line on the page. Temperature 0 is greedy."""
    kind = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
    return SamplingConfig.from_dict({**{k: kind for k in TOKEN_KINDS}, "seed": seed})


def answer_seconds(value: float | None, limit: float) -> float:
    """The maximum-length setting, within (0, limit]."""
    if value is None or not math.isfinite(float(value)) or float(value) <= 0:
        raise DemoInputError(f"maximum length must be a positive number of seconds, got {value}")
    return min(float(value), limit)


@dataclass
class Progress:
    """One update of the page: the newest frame pair, a status line, the finished mp4."""

    preview: np.ndarray | None  # [kH,2kW,3] uint8: partner's last frame | responder's newest
    status: str
    video: str | None = None
    first_chunk_s: float | None = None
    real_time_factor: float | None = None


def answer(
    pipe: ResponderPipeline,
    partner_path: Path,
    reference: np.ndarray | None,
    sampling: SamplingConfig,
    max_seconds: float,
    out_dir: Path,
) -> Iterator[Progress]:
    """Stream the answer: one Progress per generated chunk, then one with the whole mp4
    (partner turn, then the answer, side by side, with both voices)."""
    partner = pipe.read_partner(partner_path)
    face = pipe.default_reference if reference is None else reference
    h, w = pipe.frame_size
    right = np.zeros((h, w, 3), np.uint8) if face is None else crop_resize(face, (h, w))
    output = out_dir / "answer.mp4"
    stats, total = StreamStats(), pipe.max_chunks(max_seconds)
    with ClipStreamWriter(output, pipe.fps, pipe.sample_rate, (h, 2 * w)) as out:
        out.write(
            np.concatenate([partner.frames, np.broadcast_to(right, partner.frames.shape)], axis=2),
            partner.audio,
        )
        last = partner.frames[-1]
        for chunk in pipe.stream(
            partner, reference, max_seconds=max_seconds, sampling=sampling, stats=stats
        ):
            pair = np.concatenate([np.broadcast_to(last, chunk.frames.shape), chunk.frames], 2)
            out.write(pair, chunk.audio)
            yield Progress(
                _enlarge(pair[-1]),
                f"chunk {chunk.index + 1} of at most {total} · first "
                f"chunk after {stats.first_chunk_s:.2f} s",
                None,
                stats.first_chunk_s,
                stats.real_time_factor,
            )
    yield Progress(
        None,
        f"done: {stats.output_s:.1f} s answer · first chunk after "
        f"{stats.first_chunk_s or 0:.2f} s · real-time factor "
        f"{stats.real_time_factor:.2f}",
        str(output),
        stats.first_chunk_s,
        stats.real_time_factor,
    )


def _enlarge(image: np.ndarray, height: int = 240) -> np.ndarray:
    """Nearest-neighbour upscale of a small frame for the page (browsers blur small images)."""
    k = max(1, height // image.shape[0])
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def demo_choices(demo_data: str | Path) -> tuple[list[tuple[str, str]], list[str], Path | None]:
    """The demo world's test partner turns (label, path), its identity names and refs folder,
    when the demo world has been generated there (`python -m vidchat.data.sources.demo`)."""
    from vidchat.data.pairs_jsonl import read_pairs_jsonl

    root = Path(demo_data)
    pairs_file, refs = root / "test_pairs.jsonl", root / "refs"
    if not pairs_file.is_file():
        return [], [], None
    partners = sorted(
        {
            p.partner.path
            for p in read_pairs_jsonl(pairs_file)
            if p.branch == "dialogue" and os.path.exists(p.partner.path)
        }
    )
    faces = sorted(p.stem for p in refs.glob("*.png")) if refs.is_dir() else []
    return [(Path(p).stem, p) for p in partners], faces, refs if faces else None
