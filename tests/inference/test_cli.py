"""infer.py end to end on a tiny saved responder: outputs, streaming writer, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidchat.inference.cli import main
from vidchat.media import read_clip, write_clip


def decoded_durations(path) -> tuple[float, float]:
    """(video seconds, audio seconds) by decoding every frame and sample with PyAV."""
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        n_frames = sum(1 for _ in container.decode(v))
        fps = float(v.average_rate)
    with av.open(str(path)) as container:
        a = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(a))
        sr = a.codec_context.sample_rate
    return n_frames / fps, samples / sr


def answering(partner_clip, out: Path, stderr: int) -> subprocess.Popen:
    """`infer.py` answering 5 s of `partner_clip` into `out` with the shipped LM, returned once
    the first chunk's temp file stands beside `out`: mid-answer, as the rest takes seconds more."""
    cmd = [sys.executable, "infer.py", "--input", str(partner_clip), "--output", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--max-seconds", "5"], stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    for line in proc.stdout:
        if line.startswith("loaded model"):
            break
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(f".{out.name}.*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def run(args, capsys):
    """Run infer.py in-process; returns (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_writes_a_response_with_aligned_audio_and_video(
    saved_responder, partner_clip, tmp_path, capsys
):
    out = tmp_path / "response.mp4"
    code, stdout, _ = run(
        [
            "--input",
            partner_clip,
            "--checkpoint",
            saved_responder,
            "--output",
            out,
            "--max-seconds",
            "1",
            "--seed",
            "3",
        ],
        capsys,
    )
    assert code == 0, stdout
    assert "real-time factor" in stdout and "first chunk latency" in stdout
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
    video_s, audio_s = decoded_durations(out)
    assert video_s >= 0.5 and abs(audio_s - video_s) <= 1 / 8  # at least one 0.5 s chunk
    assert read_clip(out).frames.shape[1:3] == (32, 32)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_weights_answer(
    dtype, saved_responder, partner_clip, tmp_path, capsys, monkeypatch
):
    """`--dtype` casts the LM's weights once at load; the answer is a whole, aligned clip."""
    import vidchat.inference.cli as cli

    loaded = []
    load = cli.load_pipeline

    def spy(*args, **kwargs):
        loaded.append(load(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(cli, "load_pipeline", spy)
    out = tmp_path / "response.mp4"
    code, stdout, stderr = run(
        [
            "--input",
            partner_clip,
            "--checkpoint",
            saved_responder,
            "--output",
            out,
            "--max-seconds",
            "1",
            "--dtype",
            dtype,
        ],
        capsys,
    )
    assert code == 0, stderr
    assert {p.dtype for p in loaded[0].model.parameters()} == {getattr(torch, dtype)}
    video_s, audio_s = decoded_durations(out)
    assert video_s >= 0.5 and abs(audio_s - video_s) <= 1 / 8


def test_side_by_side_shows_partner_then_response(saved_responder, partner_clip, tmp_path, capsys):
    out = tmp_path / "sbs.mp4"
    code, stdout, _ = run(
        [
            "--input",
            partner_clip,
            "--checkpoint",
            saved_responder,
            "--output",
            out,
            "--max-seconds",
            "1",
            "--side-by-side",
        ],
        capsys,
    )
    assert code == 0, stdout
    clip = read_clip(out)
    assert clip.frames.shape[1:3] == (32, 64)
    assert clip.frames.shape[0] >= 12 + 4  # 1.5 s partner turn at 8 fps, then the response


def test_batch_mode_writes_one_file_per_pair_and_skips_bad_ones(
    saved_responder, partner_clip, tmp_path, capsys
):
    manifest = tmp_path / "pairs.jsonl"
    rows = [
        {"pair_id": "a", "partner": str(partner_clip)},
        {"pair_id": "b", "partner": "missing.mp4"},
        {"pair_id": "c", "partner": str(partner_clip)},
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    code, stdout, stderr = run(
        [
            "--manifest",
            manifest,
            "--checkpoint",
            saved_responder,
            "--output-dir",
            tmp_path / "out",
            "--max-seconds",
            "1",
            "--batch-size",
            "2",
        ],
        capsys,
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "c.mp4"]
    assert "skipped b" in stderr and "1 failed" in stdout


@pytest.mark.parametrize("case", ["missing", "corrupt", "no_audio"])
def test_bad_input_is_one_line_and_leaves_nothing(case, saved_responder, tmp_path, capsys):
    clip = tmp_path / f"{case}.mp4"
    if case == "corrupt":
        clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    elif case == "no_audio":
        write_clip(clip, np.zeros((8, 16, 16, 3), np.uint8), None, fps=8, sample_rate=16000)
    out = tmp_path / "out.mp4"
    code, _, stderr = run(
        ["--input", clip, "--checkpoint", saved_responder, "--output", out], capsys
    )
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(clip) in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_checkpoint_that_does_not_match_its_tokenizers(
    saved_responder, partner_clip, tmp_path, capsys
):
    doc = json.loads(saved_responder.with_suffix(".json").read_text())
    doc["layout"]["video_codebook_size"] = 32
    bad = tmp_path / "lm"
    bad.with_suffix(".json").write_text(json.dumps(doc))
    bad.with_suffix(".safetensors").write_bytes(
        saved_responder.with_suffix(".safetensors").read_bytes()
    )
    code, _, stderr = run(["--input", partner_clip, "--checkpoint", bad], capsys)
    assert code == 2 and stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1


def test_bad_sampling_option(saved_responder, partner_clip, capsys):
    code, _, stderr = run(
        ["--input", partner_clip, "--checkpoint", saved_responder, "--sample", "video.warmth=3"],
        capsys,
    )
    assert code == 2 and "KIND.KEY=VALUE" in stderr


BAD_OPTIONS = {
    "max_seconds_nan": (["--max-seconds", "nan"], "--max-seconds must be a positive"),
    "max_seconds_negative": (["--max-seconds", "-1"], "--max-seconds must be a positive"),
    "max_seconds_zero": (["--max-seconds", "0"], "--max-seconds must be a positive"),
    "max_seconds_huge": (["--max-seconds", "1e9"], "more than this model holds"),
    "temperature_nan": (["--temperature", "nan"], "temperature must be a finite number"),
    "temperature_inf": (["--temperature", "inf"], "temperature must be a finite number"),
    "temperature_negative": (["--temperature", "-1"], r"temperature must be a number >= 0"),
    "top_p": (["--top-p", "1.5"], r"sampling.video.top_p must be in \(0, 1\]"),
    "sample_top_p": (["--sample", "audio.top_p=0"], r"sampling.audio.top_p must be in \(0, 1\]"),
    "sample_not_a_number": (["--sample", "video.top_k=many"], "top_k must be an integer"),
    "batch_size": (["--batch-size", "0"], "--batch-size must be >= 1"),
    "guidance": (["--guidance", "-2"], r"sampling.guidance must be a number >= 0 \(1 = off\)"),
    "refine_steps": (["--refine-steps", "0"], "sampling.refine_steps must be an integer >= 1"),
    "dtype": (["--dtype", "fp8"], "--dtype must be one of auto, float32, bfloat16, float16"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_option_is_one_line_before_any_work(
    case, saved_responder, partner_clip, tmp_path, capsys
):
    extra, message = BAD_OPTIONS[case]
    out = tmp_path / "answer.mp4"
    code, stdout, stderr = run(
        ["--input", partner_clip, "--checkpoint", saved_responder, "--output", out, *extra], capsys
    )
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert __import__("re").search(message, lines[0]), lines[0]
    assert "Traceback" not in stderr and not out.exists() and not list(tmp_path.glob(".*"))


def test_outputs_never_destroy_a_file(saved_responder, partner_clip, tmp_path, capsys):
    before = partner_clip.read_bytes()
    existing = tmp_path / "kept.mp4"
    existing.write_bytes(b"the user's file")
    (tmp_path / "a_file").write_text("x")
    cases = {
        partner_clip: "is the input clip",
        existing: "exists; pass --overwrite",
        tmp_path: "is a folder",
        tmp_path / "a_file" / "answer.mp4": "is a file, not a folder",
        __import__("pathlib").Path("/proc/vidchat-answer.mp4"): "cannot write there",
    }
    for output, message in cases.items():
        code, stdout, stderr = run(
            ["--input", partner_clip, "--checkpoint", saved_responder, "--output", output], capsys
        )
        assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert "loaded model" not in stdout  # refused before any work
    assert partner_clip.read_bytes() == before and existing.read_bytes() == b"the user's file"
    code, _, _ = run(
        [
            "--input",
            partner_clip,
            "--checkpoint",
            saved_responder,
            "--output",
            existing,
            "--overwrite",
            "--max-seconds",
            "0.5",
        ],
        capsys,
    )
    assert code == 0 and existing.read_bytes()[4:8] == b"ftyp"  # replaced only when asked


@pytest.mark.slow
def test_sigterm_mid_answer_leaves_nothing_behind(partner_clip, tmp_path):
    """SIGTERM is handled like Ctrl-C: one line, non-zero exit, no output and no temp file."""
    import signal

    out = tmp_path / "out" / "answer.mp4"
    proc = answering(partner_clip, out, subprocess.PIPE)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in stderr
    assert not out.exists() and not list(out.parent.iterdir())


def test_a_long_input_answers_its_last_seconds(saved_responder, tmp_path, capsys):
    """Only the last --context-seconds are read: the side-by-side prefix is that window."""
    long = tmp_path / "long.mp4"
    frames = np.repeat(np.arange(120, dtype=np.uint8)[:, None, None, None], 16, 1)
    frames = np.broadcast_to(frames[:, :, :1], (120, 16, 16, 3)).copy()  # 15 s, one grey per frame
    write_clip(long, frames, np.zeros(15 * 16000, np.float32), fps=8, sample_rate=16000)
    out = tmp_path / "answer.mp4"
    code, _, stderr = run(
        [
            "--input",
            long,
            "--checkpoint",
            saved_responder,
            "--output",
            out,
            "--side-by-side",
            "--context-seconds",
            "2",
            "--max-seconds",
            "0.5",
        ],
        capsys,
    )
    assert code == 0, stderr
    video_s, _ = decoded_durations(out)
    assert 2.0 + 0.4 <= video_s <= 2.0 + 0.5 + 0.2  # the 2 s window, then the answer
    first = read_clip(out).frames[0]
    assert abs(int(first[:, : first.shape[1] // 2].mean()) - 104) <= 8  # frame 104 = 13 s in
    code, _, stderr = run(
        [
            "--input",
            long,
            "--checkpoint",
            saved_responder,
            "--output",
            out,
            "--overwrite",
            "--context-seconds",
            "1e6",
        ],
        capsys,
    )
    assert code == 2 and "--context-seconds 1e+06 does not fit" in stderr


def test_a_rerun_removes_the_temp_file_a_killed_run_left(
    saved_responder, partner_clip, tmp_path, capsys, monkeypatch
):
    """`kill -9` mid-answer leaves `.answer.mp4.XXXX.tmp.mp4` (#30 item 6): the next write of
    the same output removes it once it has gone stale; the folder's other files stay."""
    import os
    import signal

    import vidchat.utils.atomic as atomic

    out = tmp_path / "answer.mp4"
    (tmp_path / ".someone-elses.tmp").write_text("not ours")
    proc = answering(partner_clip, out, subprocess.DEVNULL)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (left,) = tmp_path.glob(".answer.mp4.*")
    monkeypatch.setattr(atomic, "STALE_TEMP_S", 0.0)  # as if a minute had passed
    code, _, stderr = run(
        [
            "--input",
            partner_clip,
            "--checkpoint",
            saved_responder,
            "--output",
            out,
            "--max-seconds",
            "1",
        ],
        capsys,
    )
    assert code == 0, stderr
    assert not left.exists() and out.is_file()
    assert (tmp_path / ".someone-elses.tmp").read_text() == "not ours"
