"""One sampling configuration: infer's flags, the web demo's sliders and the eval config all
become a `SamplingConfig`, which alone checks them. Temperature 0 is greedy in each, and a bad
value is the same one `ConfigError` line from each."""

from __future__ import annotations

import pytest
import torch

from vidchat.cli import compose
from vidchat.errors import ConfigError
from vidchat.eval.config import EvalConfig
from vidchat.inference import cli
from vidchat.model.generate import TOKEN_KINDS, SamplingConfig, TokenSampling


def infer_sampling(argv: list, monkeypatch, capsys) -> SamplingConfig:
    """`infer.py argv` run up to the answer (every check, the model loaded); the sampling that
    the answer would be generated with."""
    seen = []
    monkeypatch.setattr(cli, "respond_to_clip", lambda pipe, args: seen.append(args))
    try:
        cli.main([str(a) for a in argv])
    except SystemExit:
        pytest.fail(f"infer.py refused {argv}: {capsys.readouterr().err}")
    return cli.sampling_from_args(seen[0])


def infer_error(argv: list, capsys) -> str:
    """The one `error:` line infer.py exits with (no model loaded, no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: "), err
    return lines[0].removeprefix("error: ")


def web_respond(pipe, sliders: tuple, upload, tmp_path, monkeypatch):
    """The web demo's click handler on `upload` with the sampling sliders `(temperature, top_k,
    top_p, seed)`; returns the sampling the answer was generated with, or the page's error."""
    pytest.importorskip("gradio")
    import gradio as gr

    from vidchat.webapp import app, session
    from vidchat.webapp.config import DemoConfig
    from vidchat.webapp.workdirs import WorkDirs

    seen = []

    def answer(pipe, partner, reference, sampling, seconds, out_dir):
        seen.append(sampling)
        yield from ()

    monkeypatch.setattr(session, "answer", answer)
    (tmp_path / "work").mkdir(exist_ok=True)
    work = WorkDirs(tmp_path / "work")
    respond = app.responder(DemoConfig(demo_data=str(tmp_path / "no_demo")), pipe, work)
    try:
        list(respond(str(upload), None, session.DEFAULT_FACE, None, *sliders, 1.0))
    except gr.Error as exc:
        return exc.message
    return seen[0]


def eval_sampling(overrides: list[str]) -> SamplingConfig:
    """`python -m vidchat.eval overrides`' sampling, as its runner reads it."""
    return EvalConfig.from_cfg(compose("eval", overrides)).sampling_config()


def test_temperature_0_is_greedy_in_infer_the_web_demo_and_eval(
    pipeline, saved_responder, partner_clip, tmp_path, monkeypatch, capsys
):
    greedy = SamplingConfig.from_dict({k: {"temperature": 0} for k in TOKEN_KINDS})
    infer = infer_sampling(
        ["--input", partner_clip, "--checkpoint", saved_responder, "--temperature", 0]
        + ["--output", tmp_path / "answer.mp4", "--max-seconds", 0.5],
        monkeypatch,
        capsys,
    )
    web = web_respond(pipeline, (0, 0, 1, 0), partner_clip, tmp_path, monkeypatch)
    evaluated = eval_sampling([f"sampling.{k}.temperature=0" for k in TOKEN_KINDS])
    assert infer == greedy and web == greedy and evaluated == greedy

    clip = pipeline.read_partner(partner_clip)

    def codes(sampling):
        out = pipeline.respond(clip, max_seconds=1.0, sampling=sampling)
        return torch.cat([out.video_codes.flatten(), out.audio_codes.flatten()])

    # argmax decoding: only the most likely token kept, whatever the seed
    def argmax(seed):
        return SamplingConfig(*(TokenSampling(1.0, top_k=1) for _ in TOKEN_KINDS), seed=seed)

    answer = codes(greedy)
    assert torch.equal(answer, codes(argmax(11))) and torch.equal(answer, codes(argmax(12)))
    assert not torch.equal(answer, codes(SamplingConfig(seed=0)))  # sampling at 1 differs


def test_the_web_demo_sliders_allow_temperature_0_at_the_shared_defaults():
    pytest.importorskip("gradio")
    import gradio as gr

    from vidchat.webapp.app import sampling_inputs

    with gr.Blocks():
        temperature, top_k, top_p, seed = sampling_inputs()
    assert temperature.minimum == 0
    defaults = TokenSampling()
    assert (temperature.value, top_k.value, top_p.value) == (
        defaults.temperature,
        defaults.top_k,
        defaults.top_p,
    )
    assert seed.value == SamplingConfig().seed


# a bad value as each front end takes it: infer's flags, the web demo's sliders (temperature,
# top-k, top-p, seed; the same for every kind), an eval override; the key and value refused
BAD = {
    "temperature": (["--temperature", -1], (-1, 0, 1, 0), "video.temperature", -1),
    "temperature_nan": (
        ["--temperature", "nan"],
        (float("nan"), 0, 1, 0),
        "video.temperature",
        "nan",
    ),
    "top_p": (["--top-p", 1.5], (1, 0, 1.5, 0), "video.top_p", 1.5),
    "top_p_per_kind": (["--sample", "video.top_p=0"], (1, 0, 0, 0), "video.top_p", 0),
    "top_k": (["--top-k", -2], (1, -2, 1, 0), "video.top_k", -2),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_value_is_the_same_config_error_from_each_front_end(
    case, pipeline, partner_clip, tmp_path, monkeypatch, capsys
):
    flags, sliders, key, value = BAD[case]
    kind, name = key.split(".")
    with pytest.raises(ConfigError) as expected:
        SamplingConfig.from_dict({kind: {name: float(value)}})
    message = str(expected.value)

    out = tmp_path / "answer.mp4"
    infer = infer_error(["--input", partner_clip, "--output", out, *flags], capsys)
    web = web_respond(pipeline, sliders, partner_clip, tmp_path, monkeypatch)
    with pytest.raises(ConfigError) as evaluated:
        eval_sampling([f"sampling.{key}={value}"])
    assert {"infer": infer, "web": web, "eval": str(evaluated.value)} == dict.fromkeys(
        ("infer", "web", "eval"), message
    )
    assert message.startswith(f"sampling.{key} must be ") and not out.exists()
