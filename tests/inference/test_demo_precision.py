"""The shipped demo LMs with bf16 weights (`infer.py --dtype bfloat16`, the default on a GPU)
answer like their fp32 selves.

Greedy decoding from the same prompt is not token-for-token equal (a near-tie in the 32 px LM's
first audio code flips, and autoregression carries the difference on), so the tolerance is
stated teacher-forced: on the fp32 model's own greedy answer, the bf16 model's most likely token
equals the fp32 model's at >= 95% of the answer's positions. On a real partner, the bf16 answer
keeps the reference identity and moves its mouth as the fp32 one does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import REPO_ROOT
from tests.inference.test_demo_identity_real import real_partner
from vidchat.cli import compose
from vidchat.data.demo_world.face import measure_mouth_opening, neutral_track, render_face
from vidchat.data.demo_world.identities import make_identities
from vidchat.eval.metrics.demo_oracle import identity_match
from vidchat.inference.loading import load_pipeline
from vidchat.model import Role, pad_batch
from vidchat.model.generate import SamplingConfig, generate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SHIPPED = {
    "demo64": REPO_ROOT / "vidchat/assets/demo64/lm",
    "demo": REPO_ROOT / "vidchat/assets/demo/lm",
}
GREEDY = SamplingConfig.from_dict(
    {"video": {"temperature": 0}, "audio": {"temperature": 0}, "boundary": {"temperature": 0}}
)


def _answer_inputs(pipe, prompt, answer: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """The whole prompt + answer sequence as model inputs, and which positions predict the
    answer's tokens."""
    tokens = torch.cat([prompt.tokens, answer[answer != pipe.layout.vocab.pad]])
    split = pipe.layout.split(tokens)
    seq = pipe.layout.build(split.segments, split.ref)
    batch = pad_batch([seq])
    inputs = {"tokens": batch["tokens"], "roles": batch["roles"], "slots": batch["next_slots"]}
    if pipe.model.stepped:
        inputs.update(depth=batch["depth"], modality=batch["modality"])
    answering = (batch["roles"][0] == int(Role.RESPONDER))[1:]  # position i predicts token i+1
    return inputs, answering


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_bf16_weights_pick_the_fp32_models_tokens(name):
    pipe = load_pipeline(SHIPPED[name], device="cpu", dtype="float32")
    prompt = pipe.prompt(real_partner(pipe))
    answer = generate(pipe.model, pipe.layout, [prompt], max_chunks=3, sampling=GREEDY).tokens[0]
    inputs, answering = _answer_inputs(pipe, prompt, answer)
    with torch.no_grad():
        want = pipe.model(**inputs)[0, :-1].argmax(-1)
        got = pipe.model.to(torch.bfloat16)(**inputs)[0, :-1].argmax(-1)
    agree = float((want == got)[answering].float().mean())
    assert int(answering.sum()) > 100
    assert agree >= 0.95, f"{name}: bf16 picks the fp32 token at {agree:.1%} of the answer"


@pytest.mark.parametrize("reference", ["id02", "id05"])
def test_a_bf16_answer_to_a_real_partner_keeps_identity_and_lip_movement(reference):
    pipe = load_pipeline(SHIPPED["demo64"], device="cpu", dtype="bfloat16")
    assert next(pipe.model.parameters()).dtype == torch.bfloat16  # cast once, at load
    data = compose("train").data
    people = make_identities(int(data.num_identities), seed=int(data.seed))
    gallery = {p.name: render_face(p, neutral_track(), pipe.frame_size[0])[0] for p in people}
    response = pipe.respond(
        real_partner(pipe),
        gallery[reference],
        max_seconds=3.0,
        sampling=SamplingConfig.from_dict({"seed": 0}),
    )
    hits = [identity_match(f[None], gallery, reference).value for f in response.frames]
    assert len(hits) >= 16 and np.mean(hits) >= 0.95, np.mean(hits)
    mouth = measure_mouth_opening(response.frames)  # fp32 answers: std ~0.36, open 0 to ~0.9
    assert np.nanstd(mouth) > 0.15 and np.nanmax(mouth) > 0.5, (np.nanstd(mouth), np.nanmax(mouth))
