"""`WorkDirs`: the web demo server's own temp folder, which nothing outlives.

One root per server (`<tmp>/vidchat-demo-XXXX`) holds a folder per request and Gradio's own
copies of uploads and answers (`GRADIO_TEMP_DIR` points inside it; Gradio's default is a shared
`<tmp>/gradio` that no one ever empties). Stopping the server (Ctrl-C, SIGTERM) removes the root;
a server killed with SIGKILL leaves it, stamped with its pid, and the next server removes the
roots of servers that no longer run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from vidchat.utils.processes import alive

PREFIX = "vidchat-demo-"
OWNER = "owner.pid"  # the server's pid, so that a later server knows the root was abandoned
GRADIO = "gradio"  # Gradio's temp folder for this server


class WorkDirs:
    """One folder per request under `root`; folders older than `max_age_s` are deleted when a
    new request starts, and everything when the server stops (`remove_all`).

    Without `root`, a fresh root is made in the system temp folder, after removing those of
    servers that were killed."""

    def __init__(self, root: Path | None = None, max_age_s: float = 900.0) -> None:
        if root is None:
            remove_abandoned()
            root = Path(tempfile.mkdtemp(prefix=PREFIX))
            (root / OWNER).write_text(str(os.getpid()))
        self.root = Path(root)
        self.max_age_s = max_age_s

    @property
    def gradio_dir(self) -> Path:
        return self.root / GRADIO

    def hand_to_gradio(self) -> None:
        """Point Gradio's temp folder inside this root. Some Gradio modules read it once at
        import, so a server calls this before importing Gradio."""
        os.environ["GRADIO_TEMP_DIR"] = str(self.gradio_dir)

    def new(self) -> Path:
        self.sweep()
        return Path(tempfile.mkdtemp(dir=self.root))

    def sweep(self, max_age_s: float | None = None) -> None:
        """Remove request folders older than `max_age_s` (Gradio ages its own files)."""
        limit = self.max_age_s if max_age_s is None else max_age_s
        now = time.time()
        for entry in self.root.iterdir() if self.root.is_dir() else ():
            if entry.name not in (OWNER, GRADIO) and now - entry.stat().st_mtime >= limit:
                shutil.rmtree(entry, ignore_errors=True)

    def remove_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def remove_abandoned(parent: Path | None = None) -> list[Path]:
    """Remove the roots under `parent` (default: the system temp folder) whose server is gone."""
    removed = []
    for root in Path(parent or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            pid = int((root / OWNER).read_text())
        except (OSError, ValueError):
            continue  # not stamped (or being stamped right now): not ours to judge
        if pid != os.getpid() and not alive(pid):
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    return removed
