"""Cut the release's clips out of downloaded source videos, as the official cut script does.

    python -m vidchat.data.speakervid cut --release ROOT --sources DIR --out DIR [--workers N]

Each clip becomes `{out}/{ytid}/{stem}.mp4` (video only: the annotation's window, its bbox crop
at the annotation's clip size, 25 fps, H.264) and `{stem}.wav` (16 kHz mono), with PyAV (no
system ffmpeg). Resumable: a clip is done when both files exist, and each appears atomically
(wav first, then mp4), so a killed run leaves no half-written clip and a rerun redoes only the
unfinished ones (deleting their temp files). A missing or broken source is counted and listed in
`{out}/cut_report.json`, never fatal.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vidchat.data.records import ClipRecord, read_record
from vidchat.data.speakervid.loader import ReleaseOptions, Skips, read_records
from vidchat.errors import VidchatError
from vidchat.media import MediaError, write_clip, write_wav
from vidchat.utils.atomic import atomic_write_json
from vidchat.utils.processes import exit_with_parent

log = logging.getLogger("vidchat")
CLIP_FPS, CLIP_SAMPLE_RATE = 25, 16000  # the official cut script's


@dataclass(frozen=True)
class CutJob:
    stem: str
    source: str
    start: float
    duration: float
    bbox: list[float] | None
    size: tuple[int, int] | None  # (H, W) of the clip, from the annotation
    video: str
    audio: str


def plan_jobs(release: Path, sources: Path, out: Path, source_pattern: str) -> list[CutJob]:
    """One job per annotated clip (clips whose annotation cannot be read are warned about)."""
    opts = ReleaseOptions(
        video_dir=str(sources),
        video_pattern=source_pattern,
        audio_pattern="",
        cut=False,
        check_files=False,
    )
    records = read_records(release, opts, Skips())
    return [_job(r, out) for r in records]


def _job(record: ClipRecord, out: Path) -> CutJob:
    folder = out / str(record.labels["ytid"])
    size = record.labels.get("clip_size")
    return CutJob(
        stem=record.clip_id,
        source=record.path,
        start=record.start,
        duration=float(record.duration or 0.0),
        bbox=record.bbox,
        size=(int(size[0]), int(size[1])) if size else None,
        video=str(folder / f"{record.clip_id}.mp4"),
        audio=str(folder / f"{record.clip_id}.wav"),
    )


def is_done(job: CutJob) -> bool:
    return os.path.exists(job.video) and os.path.exists(job.audio)


def _clean_temps(job: CutJob) -> None:
    """Temp files a killed run left for this clip (`atomic_path` names them `.{name}.*`)."""
    for final in (Path(job.video), Path(job.audio)):
        for stale in final.parent.glob(f".{final.name}.*"):
            stale.unlink(missing_ok=True)


def cut_clip(job: CutJob) -> tuple[str, str, str]:
    """Cut one clip -> (stem, status, detail): status "ok", "missing" or "broken"."""
    if not os.path.exists(job.source):
        return job.stem, "missing", job.source
    _clean_temps(job)
    record = ClipRecord(job.stem, job.source, start=job.start, duration=job.duration, bbox=job.bbox)
    try:
        clip = read_record(record, fps=CLIP_FPS, size=job.size, sample_rate=CLIP_SAMPLE_RATE)
        write_wav(job.audio, clip.audio, CLIP_SAMPLE_RATE)
        write_clip(job.video, clip.frames, None, CLIP_FPS, CLIP_SAMPLE_RATE)
    except (MediaError, OSError) as exc:
        return job.stem, "broken", f"{job.source}: {exc}"
    return job.stem, "ok", job.video


def run_cut(
    release: Path,
    sources: Path,
    out: Path,
    source_pattern: str = "{ytid}.mp4",
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Cut every clip of the release that is not done yet -> the report (also written to
    `{out}/cut_report.json`)."""
    if not sources.is_dir():
        raise VidchatError(f"{sources}: source video folder not found")
    jobs = plan_jobs(release, sources, out, source_pattern)
    todo = [j for j in jobs if not is_done(j)]
    report: dict = {
        "clips": len(jobs),
        "already_done": len(jobs) - len(todo),
        "cut": 0,
        "missing_source": [],
        "broken_source": [],
    }
    bar = tqdm(total=len(todo), desc="cut", unit="clip", disable=not progress)
    for stem, status, detail in _map(cut_clip, todo, workers):
        if status == "ok":
            report["cut"] += 1
        else:
            report[f"{status}_source"].append({"clip": stem, "detail": detail})
        bar.update()
    bar.close()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "cut_report.json", report)
    return report


def _map(fn, jobs: list[CutJob], workers: int) -> Iterable[tuple[str, str, str]]:  # noqa: ANN001
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=exit_with_parent) as pool:
        yield from pool.map(fn, jobs, chunksize=1)
