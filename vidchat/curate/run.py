"""The curation run: find the sources, analyse them on Ray, plan, cut, write the release."""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import Any

from vidchat.curate.config import CurateConfig, from_cfg
from vidchat.curate.pipeline import analyse, cut_all
from vidchat.curate.release import cut_jobs, plan_release, write_release
from vidchat.curate.store import WORK_DIR, StageStore
from vidchat.errors import VidchatError
from vidchat.utils.atomic import atomic_write_json, check_writable_folder
from vidchat.utils.ray_session import ray_session
from vidchat.utils.requires import require


def find_sources(folder: Path, patterns: tuple[str, ...]) -> dict[str, Path]:
    """{ytid: path} of the source videos directly in `folder` (ytid = file stem)."""
    if not folder.is_dir():
        raise VidchatError(f"{folder}: input folder not found")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in patterns)
    )
    if not files:
        raise VidchatError(f"{folder}: no source videos ({', '.join(patterns)})")
    sources: dict[str, Path] = {}
    for path in files:
        if path.stem in sources:
            raise VidchatError(f"{path}: two sources share the id {path.stem!r}")
        sources[path.stem] = path
    return sources


def _check_own_output(out: Path) -> None:
    """Refuse a non-empty output folder that an earlier curation did not make: the release
    writer replaces what it made there (and removes its stale clips), never a user's files."""
    if out.is_dir() and any(out.iterdir()) and not (out / WORK_DIR).is_dir():
        raise VidchatError(
            f"{out}: not empty and not made by vidchat.curate; choose a new or empty output folder"
        )


CURATE_MODULES = ("ray", "scenedetect", "sklearn", "resemblyzer", "webrtcvad", "dlib")
"""What every curation run imports (shots, diarisation, faces, Ray); pocketsphinx with ASR."""


def curate(cfg: CurateConfig) -> dict:
    """Run (or resume) the whole curation -> the report (also `{output}/curate_report.json`)."""
    require(
        CURATE_MODULES + (("pocketsphinx",) if cfg.speech.asr == "pocketsphinx" else ()), "curation"
    )
    inp, out = Path(cfg.input).resolve(), Path(cfg.output).resolve()
    sources = find_sources(inp, cfg.patterns)
    if out == inp or inp in out.parents:
        raise VidchatError(f"{out}: the output must not be inside the input folder")
    _check_own_output(out)
    check_writable_folder(out, "output")
    store = StageStore(out)
    for stage in cfg.redo:
        store.forget(stage)
    clock = _Clock()
    with ray_session(cfg.ray_address, cfg.workers):
        clock.lap("ray start")
        analyse(sources, out, cfg.stage_options(), cfg.workers, cfg.progress, cfg.gpus)
        clock.lap("analyse")
        plan = plan_release(store, list(sources), cfg.clips, cfg.quality)
        clock.lap("plan")
        cuts = cut_all(cut_jobs(plan, sources, out), cfg.progress)
        clock.lap("cut")
    failed = {stem for results, _ in cuts.values() for stem, status, _ in results if status != "ok"}
    for ytid in plan.clips:
        plan.clips[ytid] = [c for c in plan.clips[ytid] if c["stem"] not in failed]
    stems = write_release(plan, out, cfg.quality)
    clock.lap("write")
    report = {**plan.report, "clips": len(stems), "cut_failed": sorted(failed)}
    atomic_write_json(out / "curate_report.json", report)
    # timings vary run to run, so they stay out of the report (kept beside the stage results)
    cut_seconds = {ytid: round(seconds, 3) for ytid, (_, seconds) in cuts.items()}
    atomic_write_json(store.root / "timings.json", {"wall": clock.laps, "cut": cut_seconds})
    _summary(report)
    return report


class _Clock:
    """Wall seconds of each phase of the run."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _summary(report: dict) -> None:
    src = report["sources"]
    print(f"curate: {src['ok']} of {src['total']} sources, {report['clips']} clips")
    for name, f in report["filters"].items():
        print(f"  {name}: kept {f['kept']}, dropped {f['dropped']}")
    for bad in src["bad"]:
        print(f"warning: {bad['source']}: {bad['reason']}")


def run(cfg: Any) -> dict:
    """Hydra entry (`python -m vidchat.curate`)."""
    return curate(from_cfg(cfg))
