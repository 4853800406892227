"""A run folder that survives crashes tidily: stale temp files removed when a run starts, and a
resumed run that continues the same CSV log instead of opening a new version.

- `remove_stale_temps(folder)`: the `.{name}.*.tmp*` files an atomic write (`utils.atomic`) leaves
  when its process is killed mid-write; one run owns a run folder at a time, so at start-up any
  such file is stale.
- `csv_version(root, resume)`: the CSV logger's version: the newest existing one when resuming;
  version folders that logged nothing (a run killed before its first log) are removed.
- `carry_log(logger)` + `TrimLogOnResume`: Lightning's CSV writer deletes an existing
  `metrics.csv` when it opens; the rows are read first and, once the restored step is known, put
  back without those the crashed run logged after its last checkpoint (the resumed run logs
  them again), so every step appears once.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L

TEMP_GLOBS = (".*.tmp", ".*.tmp.*", ".*.tmp-*")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete leftover temp files in `folder` (not recursive) -> what was removed."""
    removed = []
    for pattern in TEMP_GLOBS:
        for path in folder.glob(pattern) if folder.is_dir() else ():
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _logged_nothing(version: Path) -> bool:
    """A CSV log folder without a logged row (a run killed before its first log step)."""
    metrics = version / "metrics.csv"
    rows = metrics.read_text().strip().splitlines() if metrics.is_file() else []
    return len(rows) <= 1 and all(
        p.name in ("metrics.csv", "hparams.yaml") for p in version.iterdir()
    )


def csv_version(save_dir: Path, name: str, resume: bool) -> int | None:
    """The newest `version_N` under `save_dir/name` when resuming, else None (a new version).
    Version folders that logged nothing (left by killed runs) are removed first, by the main
    process only (another rank could otherwise take the one rank 0 is about to write)."""
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("RANK", "0")) == 0:
        for version in (save_dir / name).glob("version_*"):
            if version.is_dir() and _logged_nothing(version):
                shutil.rmtree(version, ignore_errors=True)
    versions = [
        int(p.name[len("version_") :])
        for p in (save_dir / name).glob("version_*")
        if p.name[len("version_") :].isdigit()
    ]
    return max(versions) if resume and versions else None


def carry_log(logger: Any) -> Any:
    """Remember a resumed CSV log's rows before Lightning's writer deletes the file."""
    path = Path(logger.log_dir) / "metrics.csv"
    text = path.read_text() if path.is_file() else ""
    logger.vidchat_carried = list(csv.DictReader(io.StringIO(text)))
    return logger


class TrimLogOnResume(L.Callback):
    """On a resumed fit, put back the carried CSV rows logged before the restored step."""

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        rows = getattr(trainer.logger, "vidchat_carried", None)
        if not trainer.ckpt_path or not rows or not trainer.is_global_zero:
            return
        kept = [r for r in rows if not r.get("step") or float(r["step"]) < trainer.global_step]
        trainer.logger.experiment.metrics[:0] = [
            {k: v for k, v in r.items() if v != ""} for r in kept
        ]
        trainer.logger.vidchat_carried = None
