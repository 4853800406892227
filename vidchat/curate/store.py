"""Where curation keeps its per-source stage results: `{output}/.curate/{stage}/{ytid}.json`.

Each result appears atomically, so a killed run leaves either a whole result or none; a rerun
skips sources whose result exists (a bad source's result is its error, so it is not retried
either). `forget` drops a stage's results, and those of the stages after it, to re-run it.
"""

from __future__ import annotations

import json
from pathlib import Path

from vidchat.utils.atomic import atomic_write_json

STAGES = ("shots", "speech", "people")  # per-source analysis, in order; then plan and cut
WORK_DIR = ".curate"


class StageStore:
    def __init__(self, output: str | Path) -> None:
        self.root = Path(output) / WORK_DIR

    def path(self, stage: str, ytid: str) -> Path:
        return self.root / stage / f"{ytid}.json"

    def has(self, stage: str, ytid: str) -> bool:
        return self.path(stage, ytid).exists()

    def load(self, stage: str, ytid: str) -> dict:
        return json.loads(self.path(stage, ytid).read_text())

    def save(self, stage: str, ytid: str, result: dict) -> None:
        atomic_write_json(self.path(stage, ytid), result)

    def error(self, ytid: str) -> str | None:
        """The first stage error recorded for a source, or None."""
        for stage in STAGES:
            if self.has(stage, ytid):
                result = self.load(stage, ytid)
                if "error" in result:
                    return f"{stage}: {result['error']}"
        return None

    def forget(self, stage: str) -> int:
        """Delete the results of `stage` and of every later stage -> files removed."""
        removed = 0
        for later in STAGES[STAGES.index(stage) :]:
            for path in (self.root / later).glob("*.json"):
                path.unlink()
                removed += 1
        return removed
