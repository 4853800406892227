"""The SpeakerVid-5M release loader on samples in the release layout (names, tar batches,
raw_labels, SFT_set.json, testset.json), and `cut` on real source videos."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.release_sample import GOOD, anno, real_release, write_release
from vidchat.data.pairing import select_subset
from vidchat.data.speakervid import clip_stem, load_speakervid, parse_clip_name
from vidchat.data.speakervid.lists import parse_testset
from vidchat.errors import VidchatError
from vidchat.media import probe

X, Y = "yt_ab-c_full_video", "zz-9_x"  # YouTube ids may hold `_`, `-`, even "_full_video"


def stem(ytid: str, scene: int, speaker: str, listener: bool = False) -> str:
    return clip_stem(ytid, 1080, 1920, scene, speaker, listener)


def sample_annos() -> dict[str, dict]:
    """Source X: A (scene 0), B (1), A (2), A (3), then B after a 16 s silence (4); listeners
    in scenes 0 and 1. Source Y: A then B."""
    clips = [
        (X, 0, "A", False, 0.0, 3.0),
        (X, 0, "B", True, 0.0, 3.0),
        (X, 1, "B", False, 3.2, 3.5),
        (X, 1, "A", True, 3.2, 3.5),
        (X, 2, "A", False, 7.0, 4.0),
        (X, 3, "A", False, 20.0, 4.0),
        (X, 4, "B", False, 40.0, 3.0),
        (Y, 0, "A", False, 0.0, 3.0),
        (Y, 1, "B", False, 3.5, 3.0),
    ]
    return {stem(y, s, p, q): anno(stem(y, s, p, q), t, d) for y, s, p, q, t, d in clips}


def sample_scores() -> dict[str, dict]:
    return {
        stem(X, 0, "A"): dict(GOOD),
        stem(X, 1, "B"): {**GOOD, "dover": 0.2},  # listed in SFT_set.json but fails DOVER
        stem(X, 2, "A"): dict(GOOD),  # passes the thresholds but is not listed
    }


@pytest.fixture
def release(tmp_path) -> Path:
    test = [{"partner": stem(Y, 0, "A") + ".json", "responder": stem(Y, 1, "B")}]
    sft = [stem(X, 0, "A"), f"merged_anno/{stem(X, 1, 'B')}.json", stem(X, 3, "A")]
    return write_release(tmp_path / "release", sample_annos(), sample_scores(), sft, test)


def test_clip_names_split_on_full_video():
    name = parse_clip_name(f"{X}_full_video_1080x1920_007_B_None.json")
    assert (name.ytid, name.height, name.width, name.scene) == (X, 1080, 1920, 7)
    assert (name.speaker, name.listener, name.identity) == ("B", True, f"{X}_B")
    assert clip_stem(X, 1080, 1920, 7, "B", True) == name.stem
    assert parse_clip_name("holiday_video.json") is None


def test_every_clip_has_its_own_id_path_and_identity(release):
    manifest = load_speakervid(release)
    ids = [r.clip_id for r in manifest.records]
    assert sorted(ids) == sorted(sample_annos()) and len(set(ids)) == len(ids)
    assert len({r.path for r in manifest.records}) == len(ids)
    a0 = next(r for r in manifest.records if r.clip_id == stem(X, 0, "A"))
    assert a0.path == str(release / "videos" / X / f"{a0.clip_id}.mp4")
    assert a0.audio_path == str(release / "videos" / X / f"{a0.clip_id}.wav")
    assert a0.conversation == X and a0.time == 0.0 and a0.labels["scene"] == 0
    people = {(r.conversation, r.labels["speaker_tag"]): r.speaker_id for r in manifest.records}
    assert len(set(people.values())) == len(people) == 4  # A != B, and no two sources share
    listener = next(r for r in manifest.records if r.clip_id == stem(X, 0, "B", True))
    assert listener.speaker_id == people[(X, "B")] and not listener.is_talking


def test_branches_from_the_release(release):
    manifest = load_speakervid(release)
    short = {
        r.clip_id: f"{r.conversation[:2]}{r.labels['scene']}{r.labels['speaker_tag']}"
        + ("_None" if r.labels["listener"] else "")
        for r in manifest.records
    }
    pairs = sorted(
        (
            p.branch,
            short[p.partner.clip_id],
            short[p.responder.clip_id],
            tuple(short[h.clip_id] for h in p.history),
        )
        for p in manifest.pairs
    )
    assert pairs == [
        ("dialogue", "yt0A", "yt1B", ()),
        ("dialogue", "yt1B", "yt2A", ()),  # 2A -> 3A: same speaker; 3A -> 4B: 16 s apart
        ("dialogue", "zz0A", "zz1B", ()),
        ("listening", "yt0A", "yt0B_None", ()),
        ("listening", "yt1B", "yt1A_None", ()),
        ("multi_turn", "yt1B", "yt2A", ("yt0A",)),
    ]
    assert all(p.partner.clip_id != p.responder.clip_id for p in manifest.pairs)
    singles = {short[r.clip_id] for r in manifest.records if r.branch == "single"}
    assert singles == {"yt0A", "yt1B", "yt2A", "yt3A", "yt4B", "zz0A", "zz1B"}
    wide = load_speakervid(release, max_gap_seconds=30.0)
    assert len([p for p in wide.pairs if p.branch == "dialogue"]) == 4  # now 3A -> 4B too


def test_sft_set_and_scores_from_raw_labels(release):
    manifest = load_speakervid(release)
    by_id = {r.clip_id: r for r in manifest.records}
    assert by_id[stem(X, 1, "B")].scores["dover"] == 0.2  # joined from raw_labels
    sft = {r.clip_id for r in select_subset(manifest.records, "sft")}
    # listed and passing (0A), listed without scores (3A); not 1B (fails DOVER) nor 2A (unlisted)
    assert sft == {stem(X, 0, "A"), stem(X, 3, "A")}
    mapped = load_speakervid(release, score_keys={"dover": "l_score/dover", "blur": "nope/dover"})
    scores = next(r.scores for r in mapped.records if r.clip_id == stem(X, 1, "B"))
    assert scores == {"dover": 0.2}


def test_testset_defines_the_test_split_and_its_pairs(release):
    manifest = load_speakervid(release)
    assert manifest.split_of[Y] == "test" and manifest.split_of[X] != "test"
    (bench,) = manifest.pairs_for("test", ["dialogue"])
    assert (bench.partner.clip_id, bench.responder.clip_id) == (stem(Y, 0, "A"), stem(Y, 1, "B"))
    assert bench.labels["vidchatbench"]
    forms = parse_testset(
        [
            [stem(Y, 0, "A"), stem(Y, 1, "B")],
            {"input": stem(X, 0, "A"), "output": stem(X, 1, "B")},
            stem(X, 2, "A"),
        ]
    )
    assert forms.pairs == [(stem(Y, 0, "A"), stem(Y, 1, "B")), (stem(X, 0, "A"), stem(X, 1, "B"))]
    assert forms.sources == {X, Y}


def test_tar_batches_read_like_extracted_files(tmp_path, release):
    extracted = write_release(
        tmp_path / "plain",
        sample_annos(),
        sample_scores(),
        json.loads((release / "SFT_set.json").read_text()),
        json.loads((release / "testset.json").read_text()),
        tar=False,
    )
    assert not list((extracted / "merged_anno").glob("*.tar.gz"))

    def view(root: Path) -> list:
        m = load_speakervid(root)
        records = [
            {**r.to_dict(), "path": Path(r.path).relative_to(root).as_posix(), "audio_path": None}
            for r in m.records
        ]
        return [records, [p.pair_id for p in m.pairs], m.split_of]

    assert view(release) == view(extracted)


def test_bad_files_are_skipped_with_one_line_naming_them(tmp_path, release, caplog):
    annos = sample_annos()
    write_release(tmp_path / "bad", annos, tar=False)
    bad = tmp_path / "bad"
    (bad / "merged_anno" / f"{stem(X, 2, 'A')}.json").write_text("{not json")
    (bad / "merged_anno" / f"{stem(X, 3, 'A')}.json").write_text(json.dumps({"bbox": [0, 0, 1, 1]}))
    (bad / "videos" / X / f"{stem(X, 4, 'B')}.wav").unlink()
    with caplog.at_level(logging.WARNING, logger="vidchat"):
        manifest = load_speakervid(bad)
    assert len(manifest.records) == len(annos) - 3
    assert manifest.meta["skipped"] == {"bad JSON": 1, "missing key": 1, "missing clip": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert any(f"{stem(X, 2, 'A')}.json: not valid JSON" in m for m in lines)
    assert any(f"{stem(X, 3, 'A')}.json: missing required key 'start_seconds'" in m for m in lines)
    assert any(f"{stem(X, 4, 'B')}.wav" in m and "not found" in m for m in lines)
    assert all("\n" not in m for m in lines)
    # a corrupt tar batch: its readable members load, the batch is reported
    batch = sorted((release / "merged_anno").glob("*.tar.gz"))[-1]
    batch.write_bytes(batch.read_bytes()[:40])
    assert load_speakervid(release).meta["skipped"] == {"broken archive": 1}
    with pytest.raises(VidchatError, match="merged_anno"):
        load_speakervid(tmp_path / "nowhere")
    with pytest.raises(VidchatError, match=r"data.video_pattern '\{id\}.mp4': only"):
        load_speakervid(release, video_pattern="{id}.mp4")


@pytest.fixture(scope="module")
def real_sources(tmp_path_factory):
    return real_release(tmp_path_factory.mktemp("real_release"))


def _cut(root: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "vidchat.data.speakervid",
        "cut",
        "--release",
        str(root / "release"),
        "--sources",
        str(root / "sources"),
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _digests(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != "cut_report.json"
    }


@pytest.mark.slow
def test_cut_matches_the_annotation_and_resumes_after_kill(real_sources, tmp_path):
    root = real_sources
    whole = _cut(root, tmp_path / "whole")
    _, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err
    manifest = load_speakervid(root / "release", video_dir=str(tmp_path / "whole"))
    assert len(manifest.records) == 12 and not manifest.meta["skipped"]
    for record in manifest.records:
        video, audio = probe(record.path), probe(record.audio_path)
        frames = record.labels["num_frames"]
        assert abs(video.num_frames - frames) <= 1 and video.fps == 25
        assert (video.height, video.width) == tuple(record.labels["clip_size"])
        assert audio.sample_rate == 16000 and audio.channels == 1
        assert abs(audio.duration - record.labels["duration"]) <= 1 / 25
    # kill -9 once some clips are done, then rerun: the same bytes as the uninterrupted run
    killed = tmp_path / "killed"
    run = _cut(root, killed, "--workers", "2", start_new_session=True)
    deadline = time.time() + 120
    while len(_clips(killed)) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
    run.wait()
    deadline = time.time() + 20
    while _group_alive(run.pid) and time.time() < deadline:  # its workers notice and exit
        time.sleep(0.1)
    assert not _group_alive(run.pid), "cut workers outlived their killed parent"
    done_before = len(_clips(killed))
    assert 3 <= done_before < 12, "the kill should land mid-run"
    again = _cut(root, killed)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"({done_before} already done)" in out
    assert _digests(killed) == _digests(tmp_path / "whole")
    assert not [p for p in killed.rglob(".*") if p.is_file()]  # no temp file left behind


def _clips(out: Path) -> list[Path]:
    """Finished clips (an mp4 appears last); hidden names are temp files."""
    return [p for p in out.rglob("*.mp4") if not p.name.startswith(".")]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cut_counts_missing_and_broken_sources(real_sources, tmp_path):
    root = tmp_path / "r"
    (root / "sources").mkdir(parents=True)
    os.symlink(real_sources / "release", root / "release")
    good = real_sources / "sources" / "car_phone-01.mp4"
    (root / "sources" / "car_phone-01.mp4").write_bytes(good.read_bytes())
    (root / "sources" / "car-phone_02.mp4").write_bytes(b"not a video")  # broken; 03 missing
    run = _cut(root, tmp_path / "out")
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    report = json.loads((tmp_path / "out" / "cut_report.json").read_text())
    assert (report["cut"], len(report["broken_source"]), len(report["missing_source"])) == (4, 4, 4)
    assert "carphone-03.mp4" in report["missing_source"][0]["detail"]
    assert err.count("warning:") == 2 and "Traceback" not in err


def test_uncut_sources_read_the_window_and_crop(real_sources, tmp_path):
    """`cut: false` reads each clip from its source video; it shows what `cut` writes."""
    import numpy as np

    from vidchat.data.records import read_record
    from vidchat.data.speakervid.cut import run_cut

    root = real_sources
    uncut = load_speakervid(root / "release", cut=False, video_dir=str(root / "sources"))
    record = next(r for r in uncut.records if r.clip_id.endswith("001_B"))
    assert record.path == str(root / "sources" / f"{record.conversation}.mp4")
    assert record.audio_path is None and record.bbox == [0.5, 0.0, 1.0, 1.0]
    assert (record.start, record.duration) == pytest.approx((4.2, 3.6))
    run_cut(root / "release", root / "sources", tmp_path / "cut", progress=False)
    cut = load_speakervid(root / "release", video_dir=str(tmp_path / "cut"))
    twin = next(r for r in cut.records if r.clip_id == record.clip_id)
    a, b = (read_record(r, fps=8, size=64, sample_rate=16000) for r in (record, twin))
    assert a.frames.shape == b.frames.shape and len(a.audio) == len(b.audio)
    assert np.abs(a.frames.astype(int) - b.frames).mean() < 4  # H.264 generation loss only
    assert np.abs(a.audio - b.audio).max() < 0.05  # AAC in the source vs the wav


def test_tokenize_of_a_selection_with_no_clips_is_an_error(tmp_path):
    from vidchat.cli import compose
    from vidchat.training.tokenize.stage import tokenize

    root = write_release(tmp_path / "r", sample_annos(), sft=[])  # nothing in the SFT subset
    cfg = compose(
        "train",
        [
            "stage=tokenize",
            "data=speakervid",
            f"data.root={root}",
            f"paths.root_dir={tmp_path}",
            "data.video.size=32",
        ],
    )
    with pytest.raises(VidchatError, match="selects no clips"):
        tokenize(cfg)
