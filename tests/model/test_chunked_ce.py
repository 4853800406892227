"""The chunked output head + cross-entropy (`model.loss_chunk`) is the plain loss: the same
per-position NLL and the same gradients, while only one chunk's logits exist at a time."""

import pytest
import torch
import torch.nn.functional as F
from conftest import demo_layout, random_segment, tiny_model

from vidchat.model import Role, pad_batch
from vidchat.model.chunked_ce import linear_cross_entropy

pytestmark = pytest.mark.timeout(120)


def _batch(layout, gen):
    seqs = [layout.build([random_segment(layout, Role.RESPONDER, s, gen)]) for s in (1.0, 0.6)]
    return pad_batch(seqs, loss_mode="after_ref")


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    nll = model.nll(batch["tokens"], batch["tokens"], batch["roles"], batch["next_slots"])
    loss = (nll * batch["loss_mask"][:, 1:]).sum() / batch["loss_mask"][:, 1:].sum()
    loss.backward()
    return nll.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [1, 37, 10_000])
def test_chunked_nll_and_gradients_equal_the_plain_ones(gen, chunk):
    layout = demo_layout()
    model = tiny_model(layout).train()
    batch = _batch(layout, gen)
    plain_nll, plain = _loss_and_grads(model, batch)
    model.loss_chunk = chunk
    nll, grads = _loss_and_grads(model, batch)
    torch.testing.assert_close(nll, plain_nll, rtol=0, atol=1e-5)
    for name, g in grads.items():  # the head's gradient sums the chunks in another order
        torch.testing.assert_close(g, plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_no_logits_are_saved_for_backward():
    """Plain: the logits of every position stay alive until backward. Chunked: autograd keeps
    only the chunks' inputs (hidden states, the weight); backward recomputes one chunk's logits
    at a time."""
    torch.manual_seed(0)
    hidden = torch.randn(512, 16, requires_grad=True)
    weight = torch.randn(1000, 16, requires_grad=True)
    targets = torch.randint(0, 1000, (512,))
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    for chunk in (None, 64):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = linear_cross_entropy(hidden, weight, targets, chunk).mean()
        biggest = max(saved)
        assert biggest >= 512 * 1000 if chunk is None else biggest <= 1000 * 16, (chunk, biggest)
        loss.backward()
    ref = F.cross_entropy(hidden @ weight.T, targets, reduction="none")
    torch.testing.assert_close(linear_cross_entropy(hidden, weight, targets, 64), ref)
