"""Diarisation scoring, and diarisation of a real two-speaker recording against its RTTM."""

from __future__ import annotations

import pytest

from vidchat.curate.scoring import diarisation_error_rate
from vidchat.curate.speech import read_rttm

REF = [{"speaker": "x", "start": 0.0, "end": 2.0}, {"speaker": "y", "start": 3.0, "end": 5.0}]


def test_der_is_zero_for_the_reference_under_any_names_and_counts_each_error():
    renamed = [{**t, "speaker": {"x": "B", "y": "A"}[t["speaker"]]} for t in REF]
    assert diarisation_error_rate(REF, renamed) == 0.0
    assert diarisation_error_rate(REF, []) == 1.0  # all missed
    one_label = [{"speaker": "A", "start": 0.0, "end": 5.0}]  # 1 s false alarm, 2 s confused
    assert diarisation_error_rate(REF, one_label) == pytest.approx(3 / 4, abs=0.01)
    assert diarisation_error_rate(REF, one_label, collar=0.25) < 3 / 4


def test_read_rttm(tmp_path):
    path = tmp_path / "a.rttm"
    path.write_text("SPEAKER f 1 0.50 1.25 <NA> <NA> spk1 <NA> <NA>\nnoise\n")
    assert read_rttm(path) == [{"speaker": "spk1", "start": 0.5, "end": 1.75}]


@pytest.mark.slow
def test_diarisation_of_the_pyannote_sample_matches_its_rttm():
    from tests.real_media import pyannote_sample
    from vidchat.curate.speech import SpeechOptions, diarise, load_encoder
    from vidchat.media import read_clip

    wav, rttm = pyannote_sample()
    sound = read_clip(wav, require_video=False)
    turns = diarise(sound.audio, sound.sample_rate, load_encoder(), SpeechOptions())["turns"]
    assert {t["speaker"] for t in turns} == {"A", "B"}
    assert diarisation_error_rate(read_rttm(rttm), turns, collar=0.25) < 0.15  # measured 0.057


def test_turns_from_an_outside_rttm_keep_the_two_main_speakers_a_first():
    from vidchat.curate.speech import turns_from_rttm

    turns = [
        {"speaker": "s2", "start": 0.0, "end": 1.0},  # talks first, least: not a main one
        {"speaker": "s1", "start": 1.0, "end": 4.0},
        {"speaker": "s0", "start": 4.5, "end": 6.0},
        {"speaker": "s1", "start": 6.0, "end": 7.5},
    ]
    out = turns_from_rttm(turns)["turns"]
    assert [(t["speaker"], t["start"]) for t in out] == [("A", 1.0), ("B", 4.5), ("A", 6.0)]


@pytest.mark.slow
def test_speech_stage_takes_the_given_rttm(tmp_path):
    from tests.real_media import pyannote_sample
    from vidchat.curate.speech import SpeechOptions
    from vidchat.curate.stages import BadSource, StageOptions, speech_stage

    wav, rttm = pyannote_sample()
    (tmp_path / f"{wav.stem}.rttm").write_text(rttm.read_text())
    opts = StageOptions(speech=SpeechOptions(rttm_dir=str(tmp_path)))
    turns = speech_stage(str(wav), (None, None), opts)["turns"]
    assert {t["speaker"] for t in turns} == {"A", "B"}
    assert diarisation_error_rate(read_rttm(rttm), turns) < 0.01  # the same turns, renamed
    (tmp_path / f"{wav.stem}.rttm").unlink()
    with pytest.raises(BadSource, match="rttm is missing"):
        speech_stage(str(wav), (None, None), opts)
