"""The metric registry and the demo-world oracle scores."""

import subprocess
import sys

import numpy as np
import pytest

from vidchat.errors import VidchatError
from vidchat.eval.metrics.demo_oracle import colour_grid_features, emotion_agreement, identity_match
from vidchat.eval.metrics.registry import REGISTRY, get_metric, resolve_callable
from vidchat.eval.metrics.result import MetricResult
from vidchat.eval.metrics.sample import EvalSample


def _person(skin, shirt, bg, t=4, mouth=0):
    """Cartoon-like frames [t,32,32,3]: background, head, shirt, a mouth of `mouth` rows."""
    f = np.zeros((t, 32, 32, 3), np.uint8)
    f[:] = bg
    f[:, 6:20, 10:22] = skin
    f[:, 22:, 6:26] = shirt
    f[:, 15 : 15 + mouth, 13:19] = 30
    return f


GALLERY = {
    "ana": _person((236, 200, 170), (40, 80, 200), (170, 200, 230), t=1)[0],
    "bo": _person((122, 84, 58), (200, 40, 40), (232, 220, 190), t=1)[0],
}


def test_import_is_cheap_and_lists_every_metric():
    code = "import sys, vidchat.eval.metrics; print(sorted(m for m in ('torch','dlib','librosa','onnxruntime','scipy','resemblyzer') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    expected = {
        "psnr",
        "ssim",
        "fid",
        "fvd",
        "identity",
        "arcface",
        "lip_sync",
        "syncnet",
        "voice_similarity",
        "dnsmos",
        "voice_activity",
        "wer",
        "demo_lip_sync",
        "demo_identity",
        "demo_emotion",
        "partner_dependence",
    }
    assert set(REGISTRY) == expected
    assert {n for n, m in REGISTRY.items() if m.scope == "dataset"} == {"fid", "fvd"}


def test_unknown_metric_and_bad_callable_are_user_errors():
    with pytest.raises(VidchatError, match="unknown metric 'fidd'.*fid"):
        get_metric("fidd")
    with pytest.raises(VidchatError, match="cannot import"):
        resolve_callable("vidchat.nope:f", "x")
    assert resolve_callable("numpy:mean", "x") is np.mean


def test_registry_runs_pixel_metrics_and_reports_missing_inputs():
    frames = _person((236, 200, 170), (40, 80, 200), (170, 200, 230))
    audio = np.zeros(16000, np.float32)
    sample = EvalSample(frames, audio, fps=8, sample_rate=16000, target_frames=frames)
    assert get_metric("psnr").fn(sample).value == 100.0
    assert get_metric("ssim").fn(sample).value == pytest.approx(1.0)
    bare = EvalSample(frames, audio, fps=8, sample_rate=16000)
    with pytest.warns(UserWarning):
        results = [
            get_metric(n).fn(bare) for n in ("psnr", "identity", "demo_identity", "demo_emotion")
        ]
        results.append(get_metric("fid").fn([bare]))
    assert all(isinstance(r, MetricResult) and not r.available and r.reason for r in results)
    assert results[0].as_dict() == {
        "name": "psnr",
        "value": None,
        "details": {},
        "reason": results[0].reason,
    }


def test_identity_match_picks_the_nearest_gallery_person():
    generated = _person((230, 195, 165), (45, 85, 190), (165, 200, 235), mouth=3)  # ana, noisy
    assert identity_match(generated, GALLERY, "ana").value == 1.0
    wrong = identity_match(generated, GALLERY, "bo")
    assert wrong.value == 0.0 and wrong.details["nearest"] == "ana"
    assert colour_grid_features(generated).shape == (48,)


def test_emotion_agreement_uses_the_given_classifier():
    def by_mouth(frames):  # open mouth = "happy" in this toy rule
        return "happy" if (frames.mean(axis=3) < 50).any() else "neutral"

    sample = EvalSample(
        _person((1, 2, 3), (4, 5, 6), (7, 8, 9), mouth=2),
        np.zeros(10, np.float32),
        8,
        16000,
        labels={"emotion": "happy"},
    )
    assert get_metric("demo_emotion").fn(sample, classify=by_mouth).value == 1.0
    assert emotion_agreement(sample.generated_frames, "sad", by_mouth).value == 0.0


def test_demo_lip_sync_with_a_pixel_extractor():
    fps, sr, n = 8, 16000, 48
    opening = np.abs(np.sin(np.arange(n) * 0.9)) * 6
    frames = np.stack(
        [
            _person((200, 160, 140), (10, 10, 200), (100, 100, 100), t=1, mouth=int(round(o)))[0]
            for o in opening
        ]
    )
    hop = sr // fps
    audio = (
        np.random.default_rng(0).normal(0, 0.1, n * hop) * np.repeat(np.round(opening), hop)
    ).astype(np.float32)
    sample = EvalSample(frames, audio, fps, sr)
    dark = "tests.eval.test_lipsync:dark_rows"
    res = get_metric("demo_lip_sync").fn(sample, mouth_opening=dark, max_lag=2)
    assert res.name == "demo_lip_sync" and res.value > 0.9 and res.details["lag"] == 0


def test_demo_oracles_on_rendered_demo_faces(tmp_path):
    """Real demo-world renders: right identity out of 8, emotion read from the mouth curvature,
    lip sync found at the right lag with the default pixel oracle."""
    face = pytest.importorskip("vidchat.data.demo_world.face")
    from vidchat.data.demo_world.identities import make_identities
    from vidchat.media import write_image

    people = make_identities(8)
    for p in people:
        write_image(tmp_path / f"{p.name}.png", face.render_face(p, face.neutral_track(), 64)[0])
    fps, sr, n = 24, 16000, 72
    mouth = np.clip(np.sin(np.arange(n) * 0.45), 0, 1)
    track = face.neutral_track(n)
    track.mouth_open, track.curvature = mouth, face.CURVATURE["happy"]
    frames = face.render_face(people[3], track, 64)
    hop = sr // fps
    voice = (np.random.default_rng(0).normal(0, 0.2, n * hop) * np.repeat(mouth, hop)).astype(
        np.float32
    )
    late = np.concatenate([np.zeros(2 * hop, np.float32), voice[: -2 * hop]])
    labels = {"identity": people[3].name, "emotion": "happy"}
    sample = EvalSample(frames, late, fps, sr, labels=labels)

    ident = get_metric("demo_identity").fn(sample, gallery=str(tmp_path))
    assert ident.value == 1.0 and ident.details["nearest"] == people[3].name
    assert get_metric("demo_emotion").fn(sample).value == 1.0
    sad = EvalSample(frames, late, fps, sr, labels={"emotion": "sad"})
    assert get_metric("demo_emotion").fn(sad).value == 0.0
    sync = get_metric("demo_lip_sync").fn(sample, max_lag=4)
    assert sync.details["lag"] == 2 and sync.value > 0.8


@pytest.mark.parametrize(
    ("metric", "package"),
    [
        ("identity", "dlib"),
        ("lip_sync", "dlib"),
        ("voice_similarity", "resemblyzer"),
        ("dnsmos", "speechmos"),
        ("voice_activity", "silero_vad"),
        ("wer", "pocketsphinx"),
    ],
)
def test_a_missing_package_gives_an_unavailable_result(monkeypatch, metric, package):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == package else real(n, *a)
    )
    frames = _person((236, 200, 170), (40, 80, 200), (170, 200, 230))
    audio = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    sample = EvalSample(frames, audio, 8, 16000, reference_image=frames[0], reference_audio=audio)
    with pytest.warns(UserWarning, match=metric):
        res = get_metric(metric).fn(sample)
    assert not res.available and "pip install" in res.reason
