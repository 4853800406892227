"""A run folder that survives crashes tidily: stale temp files removed when a run starts, and a
resumed run that continues the same CSV log instead of opening a new version.

- `remove_stale_temps(folder)`: the `.{name}.*.tmp*` files an atomic write (`utils.atomic`) leaves
  when its process is killed mid-write; one run owns a run folder at a time, so at start-up any
  such file is stale.
- `csv_version(root, resume)`: the CSV logger's version: the newest existing one when resuming.
- `carry_log(logger)` + `TrimLogOnResume`: Lightning's CSV writer deletes an existing
  `metrics.csv` when it opens; the rows are read first and, once the restored step is known, put
  back without those the crashed run logged after its last checkpoint (the resumed run logs
  them again), so every step appears once.
"""

from __future__ import annotations

import csv
import io
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


def csv_version(save_dir: Path, name: str, resume: bool) -> int | None:
    """The newest `version_N` under `save_dir/name` when resuming, else None (a new version)."""
    versions = [int(p.name[len("version_"):]) for p in (save_dir / name).glob("version_*")
                if p.name[len("version_"):].isdigit()]  # fmt: skip
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
        trainer.logger.experiment.metrics[:0] = [{k: v for k, v in r.items() if v != ""}
                                                 for r in kept]  # fmt: skip
        trainer.logger.vidchat_carried = None
