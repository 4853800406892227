"""Curation of a raw source made of real recordings (real voices, a real face)."""

from __future__ import annotations

import pytest

from tests.curate.conftest import curate_config
from tests.curate.real_source import compose_real_source
from vidchat.curate.scoring import cut_accuracy, diarisation_error_rate
from vidchat.curate.store import StageStore


@pytest.mark.slow
def test_real_voices_and_a_real_face_are_curated(ray_cluster, tmp_path):
    from tests.real_media import carphone_path, pyannote_sample
    from vidchat.curate.run import curate

    face = carphone_path()
    wav, rttm = pyannote_sample()
    raw = tmp_path / "raw"
    raw.mkdir()
    truth = compose_real_source(face, wav, rttm, raw)
    out = tmp_path / "out"
    report = curate(curate_config(raw, out))
    store = StageStore(out)
    assert report["sources"]["ok"] == 1, report["sources"]
    assert cut_accuracy(truth["cuts"], store.load("shots", "real0000")["cuts"]) == 1.0
    turns = store.load("speech", "real0000")["turns"]
    assert diarisation_error_rate(truth["speech"], turns, collar=0.25) < 0.15
    people = store.load("people", "real0000")["shots"]
    assert all(len(s["faces"]) == 2 for s in people)  # both real faces tracked in every shot
    for shot, true in zip(people, truth["shots"]):  # each track on a true face
        centres = [
            ((f["box"][0] + f["box"][2]) / 2, (f["box"][1] + f["box"][3]) / 2)
            for f in shot["faces"]
        ]
        boxes = list(true["faces"].values())
        assert all(any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes) for x, y in centres)
    # the carphone face does not speak the sample's words, so the binding is not scored here
    assert report["clips"] > 0
