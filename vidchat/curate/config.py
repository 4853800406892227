"""`CurateConfig`: the curation run's options (configs/curate.yaml), checked before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidchat.curate.clips import ClipOptions
from vidchat.curate.dover import DoverOptions
from vidchat.curate.faces import FaceOptions
from vidchat.curate.hands import HandOptions
from vidchat.curate.quality import QualityOptions
from vidchat.curate.shots import ShotOptions
from vidchat.curate.speech import SpeechOptions
from vidchat.curate.stages import StageOptions
from vidchat.curate.store import STAGES
from vidchat.curate.syncnet_bind import SyncOptions
from vidchat.errors import ConfigError
from vidchat.utils.typed import check, from_node

VIDEO_PATTERNS = ("*.mp4", "*.mkv", "*.mov", "*.webm", "*.avi")


@dataclass(frozen=True)
class CurateConfig:
    input: str  # folder of raw source videos (one conversation per file)
    output: str  # the release written here (resumable: rerun the same command)
    workers: int = 2  # actors per stage (and local Ray CPUs)
    ray_address: str | None = None  # None: a local Ray; "auto" or "ray://host:10001": a cluster
    patterns: tuple[str, ...] = VIDEO_PATTERNS
    redo: tuple[str, ...] = ()  # stages to recompute (and every later one)
    progress: bool = True
    # GPUs per speech actor (voice encoder, Whisper); None: the cluster's GPUs shared among the
    # workers (at most 1 each) when it has any, else 0
    gpus: float | None = None
    shots: ShotOptions = field(default_factory=ShotOptions)
    speech: SpeechOptions = field(default_factory=SpeechOptions)
    faces: FaceOptions = field(default_factory=FaceOptions)
    clips: ClipOptions = field(default_factory=ClipOptions)
    quality: QualityOptions = field(default_factory=QualityOptions)
    min_sync: float = 0.1  # a voice binds to a face only above this correlation
    sync: SyncOptions = field(default_factory=SyncOptions)  # SyncNet binding (user weights)
    dover: DoverOptions = field(default_factory=DoverOptions)  # DOVER scores (user weights)
    hands: HandOptions = field(default_factory=HandOptions)  # hand blur (user hand detector)

    def __post_init__(self) -> None:
        check("curate.workers", self.workers >= 1, ">= 1", self.workers)
        if self.gpus is not None:
            check("curate.gpus", self.gpus >= 0, ">= 0 (or null: auto)", self.gpus)
        for stage in self.redo:
            check("curate.redo", stage in STAGES, f"a list of {list(STAGES)}", list(self.redo))
        lo, hi = self.shots.min_seconds, self.shots.max_seconds
        check("curate.shots.min_seconds", 0 < lo <= hi, "> 0 and <= shots.max_seconds", lo)
        check(
            "curate.speech.num_speakers",
            self.speech.num_speakers >= 2,
            ">= 2",
            self.speech.num_speakers,
        )
        check(
            "curate.faces.detect_every",
            self.faces.detect_every >= 1,
            ">= 1",
            self.faces.detect_every,
        )
        check(
            "curate.speech.asr",
            self.speech.asr in ("none", "pocketsphinx", "whisper"),
            "none, pocketsphinx or whisper",
            self.speech.asr,
        )
        if self.speech.asr == "whisper":
            model = self.speech.asr_model
            check(
                "curate.speech.asr_model",
                bool(model) and Path(model, "config.json").is_file(),
                "a local Whisper checkpoint folder (with config.json)",
                model,
            )
        nets = (
            ("sync.syncnet", self.sync.syncnet, "SyncNet"),
            ("dover.weights", self.dover.weights, "DOVER"),
            ("hands.detector", self.hands.detector, "hand detector"),
        )
        for key, path, what in nets:  # the user's TorchScript networks, each optional
            if path is not None:
                check(f"curate.{key}", Path(path).is_file(), f"a TorchScript {what} file", path)
        check("curate.sync.vshift", self.sync.vshift >= 1, ">= 1", self.sync.vshift)
        check("curate.sync.min_frames", self.sync.min_frames >= 6, ">= 6", self.sync.min_frames)
        check("curate.dover.frames", self.dover.frames >= 1, ">= 1", self.dover.frames)
        if self.speech.rttm_dir is not None:
            check(
                "curate.speech.rttm_dir",
                Path(self.speech.rttm_dir).is_dir(),
                "a folder of {source}.rttm files",
                self.speech.rttm_dir,
            )
        share = self.quality.drop_share
        check("curate.quality.drop_share", 0 <= share < 1, "in [0, 1)", share)

    def stage_options(self) -> StageOptions:
        return StageOptions(
            self.shots, self.speech, self.faces, self.min_sync, self.sync, self.dover, self.hands
        )


def from_cfg(cfg: Any) -> CurateConfig:
    """The Hydra config (its `hydra` and `paths` nodes aside) -> CurateConfig."""
    from omegaconf import DictConfig, OmegaConf

    for key in ("input", "output"):
        if isinstance(cfg, DictConfig) and OmegaConf.is_missing(cfg, key):
            raise ConfigError(
                f"curation needs {key}=DIR (python -m vidchat.curate input=DIR output=DIR)"
            )
    return from_node(CurateConfig, cfg, "curate", ignore=("hydra", "paths"))
