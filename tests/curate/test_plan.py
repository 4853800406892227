"""The run-wide plan on hand-made stage results: each clip is scored on its own face."""

from __future__ import annotations

import pytest

from vidchat.curate.clips import ClipOptions
from vidchat.curate.config import CurateConfig
from vidchat.curate.dover import DoverOptions
from vidchat.curate.quality import QualityOptions
from vidchat.curate.release import plan_release
from vidchat.curate.store import StageStore


def _store(tmp_path) -> StageStore:
    store = StageStore(tmp_path)
    source = {
        "fps": 25.0,
        "height": 100,
        "width": 200,
        "num_frames": 250,
        "duration": 10.0,
        "clarity": 300.0,
    }
    shot = {"index": 0, "start": 0, "end": 250}
    store.save("shots", "x", {"source": source, "cuts": [], "shots": [shot], "dropped_shots": []})
    store.save(
        "speech", "x", {"segments": [], "turns": [{"speaker": "A", "start": 1.0, "end": 3.0}]}
    )
    faces = [
        {"box": [10, 10, 50, 50], "sharpness": 2000.0},  # A talks: sharp
        {"box": [120, 10, 160, 50], "sharpness": 20.0},
    ]  # B listens: blurred
    people = {
        **shot,
        "luminance": 120.0,
        "faces": faces,
        "correlations": {},
        "binding": {"A": {"face": 0, "sync": 0.9, "conf": 0.9}},
    }
    store.save("people", "x", {"shots": [people], "dropped_shots": []})
    return store


def plan_with_face_scores(tmp_path, talker: dict, listener: dict):
    """The plan of `_store` with extra scores on the talker's (A) and the listener's (B) faces;
    the listener's face is made sharp, so only those scores can drop its clip."""
    store = _store(tmp_path)
    people = store.load("people", "x")
    faces = people["shots"][0]["faces"]
    faces[0].update(talker)
    faces[1].update({"sharpness": 2000.0, **listener})
    store.save("people", "x", people)
    return plan_release(store, ["x"], ClipOptions(), QualityOptions())


def test_the_listening_clip_is_judged_by_the_listeners_face(tmp_path):
    plan = plan_release(_store(tmp_path), ["x"], ClipOptions(), QualityOptions())
    kept = [c["stem"] for c in plan.clips["x"]]
    assert kept == ["x_full_video_100x200_000_A"]
    dropped = plan.report["filters"]["face blur"]["dropped_items"]
    assert [d["item"] for d in dropped] == ["x_full_video_100x200_000_B_None"]


def test_a_source_whose_analysis_stopped_early_is_listed(tmp_path):
    store = _store(tmp_path)
    store.path("people", "x").unlink()
    plan = plan_release(store, ["x"], ClipOptions(), QualityOptions())
    assert not plan.clips and "stopped early" in plan.report["sources"]["bad"][0]["reason"]


def test_gpu_actors_share_the_clusters_gpus_or_say_there_are_too_few():
    from vidchat.curate.devices import actor_gpus
    from vidchat.errors import VidchatError

    assert actor_gpus(None, 0.0, 2) == 0.0  # no GPU: CPU actors
    assert actor_gpus(None, 1.0, 4) == 0.25 and actor_gpus(None, 8.0, 2) == 1.0
    assert actor_gpus(None, 1.0, 2, stages=2) == 0.25  # speech and people actors: 4 in all
    assert actor_gpus(0.5, 1.0, 2) == 0.5 and actor_gpus(0, 0.0, 2) == 0.0
    for setting, gpus, stages in ((1.0, 0.0, 1), (0.5, 1.0, 2), (1.0, 1.0, 1)):
        with pytest.raises(VidchatError, match="more GPUs than the Ray cluster has"):
            actor_gpus(setting, gpus, 2, stages)  # Ray would wait for a GPU forever


def test_people_actors_take_a_gpu_share_only_with_a_network(tmp_path):
    from vidchat.curate.devices import gpu_stages

    plain = CurateConfig(input=str(tmp_path), output=str(tmp_path / "o")).stage_options()
    assert gpu_stages(plain) == ("speech",)
    net = tmp_path / "dover.pt"
    net.write_bytes(b"x")
    given = CurateConfig(
        input=str(tmp_path), output=str(tmp_path / "o"), dover=DoverOptions(weights=str(net))
    ).stage_options()
    assert gpu_stages(given) == ("speech", "people")


def test_a_network_on_a_device_is_called_like_the_original():
    """`OnDevice` moves tensor arguments to its device and results back, methods included
    (SyncNet's `forward_lip`); on the CPU it must give exactly the original's outputs."""
    import torch

    from vidchat.curate.devices import OnDevice

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x)

        @torch.jit.export
        def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x) * 2

    net = torch.jit.script(Net()).eval()
    x = torch.randn(4, 3)
    wrapped = OnDevice(net, "cpu")
    assert torch.equal(wrapped(x), net(x)) and torch.equal(
        wrapped.forward_lip(x), net.forward_lip(x)
    )
    assert wrapped(x).device.type == "cpu" and wrapped.training is False


def test_every_piece_of_speech_is_a_clip_or_a_drop_with_its_reason():
    """A source with faces in both shots that yields 0 clips says why (#30 item 9): here one
    voice no mouth followed, one too short, one in no kept shot."""
    from vidchat.curate.clips import ClipOptions, plan_clips

    source = {"ytid": "vid", "height": 128, "width": 128, "fps": 10.0, "duration": 20.0}
    face = {"box": [30, 30, 90, 90]}
    shots = [
        {
            "index": 0,
            "start": 0,
            "end": 50,
            "faces": [face],
            "binding": {},
            "correlations": {"A": [0.12]},
        },
        {"index": 1, "start": 50, "end": 100, "faces": [face], "binding": {}, "correlations": {}},
    ]
    turns = [
        {"speaker": "A", "start": 0.5, "end": 4.0},  # shot 0: nobody's mouth followed it
        {"speaker": "B", "start": 6.0, "end": 6.4},  # shot 1: too short
        {"speaker": "B", "start": 12.0, "end": 15.0},
    ]  # after the kept shots
    dropped: list[dict] = []
    assert plan_clips(source, shots, turns, ClipOptions(), dropped) == []
    reasons = {d["item"]: d["reason"] for d in dropped}
    assert reasons == {
        "vid voice A 0.50-4.00 s": "no face's mouth followed this voice in shot 0 "
        "(best sync 0.12 over 1 face(s))",
        "vid voice B 6.00-6.40 s": "0.40 s in shot 1, shorter than min_clip 1 s",
        "vid voice B 12.00-15.00 s": "in no kept shot",
    }
