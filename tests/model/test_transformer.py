import pytest
import torch
from conftest import random_segment, tiny_model

from vidchat.cli import compose
from vidchat.errors import ConfigError
from vidchat.model import ModelConfig, Role, build_model, pad_batch


def batch_inputs(layout, gen, seconds=(1.0, 0.5), side="right"):
    seqs = [layout.prompt([random_segment(layout, Role.PARTNER, s, gen)]) for s in seconds]
    return pad_batch(seqs, side=side)


def test_causal_future_token_does_not_change_past(layout, gen):
    model = tiny_model(layout)
    b = batch_inputs(layout, gen, seconds=(1.0,))
    tokens = b["tokens"]
    with torch.no_grad():
        ref = model(tokens, b["roles"], b["next_slots"])
        changed = tokens.clone()
        changed[0, 100] = (changed[0, 100] + 1) % layout.vocab.size
        out = model(changed, b["roles"], b["next_slots"])
    torch.testing.assert_close(out[:, :100], ref[:, :100])
    assert not torch.allclose(out[:, 100:], ref[:, 100:])


@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_kv_cache_matches_full_forward(layout, gen, n_kv_heads):
    model = tiny_model(layout, n_kv_heads=n_kv_heads)
    b = batch_inputs(layout, gen, seconds=(1.0, 1.0))
    t, r, s = b["tokens"], b["roles"], b["next_slots"]
    with torch.no_grad():
        full = model(t, r, s)
        cache = model.new_cache(2, 512)
        parts = [model(t[:, :60], r[:, :60], s[:, :60], cache=cache)]  # prefill
        parts += [
            model(t[:, i : i + 1], r[:, i : i + 1], s[:, i : i + 1], cache=cache)
            for i in range(60, 70)
        ]
        parts.append(model(t[:, 70:], r[:, 70:], s[:, 70:], cache=cache))  # a multi-token append
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=1e-4)


def test_left_padding_matches_unpadded_with_and_without_cache(layout, gen):
    model = tiny_model(layout, n_kv_heads=2)
    b = batch_inputs(layout, gen, seconds=(1.0, 0.5), side="left")
    t, r, s, valid = b["tokens"], b["roles"], b["next_slots"], b["valid"]
    n = int(valid[1].sum())
    with torch.no_grad():
        alone = model(t[1:, -n:], r[1:, -n:], s[1:, -n:])  # the short row, unpadded
        padded = model(t, r, s, valid=valid)
        torch.testing.assert_close(padded[1:, -n:], alone, atol=1e-5, rtol=1e-4)
        assert torch.isfinite(padded).all()
        cache = model.new_cache(2, 512)
        L = t.shape[1]
        pre = model(
            t[:, : L - 5], r[:, : L - 5], s[:, : L - 5], valid=valid[:, : L - 5], cache=cache
        )
        steps = [
            model(t[:, i : i + 1], r[:, i : i + 1], s[:, i : i + 1], cache=cache)
            for i in range(L - 5, L)
        ]
    cached = torch.cat([pre, *steps], 1)
    torch.testing.assert_close(cached[:, -n:], padded[:, -n:], atol=1e-5, rtol=1e-4)


def test_gradient_checkpointing_same_gradients_and_names(layout, gen):
    """`model.grad_checkpointing`, applied from outside the model (training's `apply_runtime`):
    each block recomputes in backward (fewer saved tensors), with the same gradients and the
    same state-dict names."""
    from vidchat.training.lm.runtime import apply_runtime

    b = batch_inputs(layout, gen, seconds=(0.5, 0.5))
    grads, saved, names = [], [], []
    for ckpt in (False, True):
        model = apply_runtime(tiny_model(layout).train(), {"grad_checkpointing": ckpt})
        count: list[int] = []

        def pack(t, count=count):
            count.append(1)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            logits = model(b["tokens"], b["roles"], b["next_slots"])
        torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), b["tokens"][:, 1:].flatten()
        ).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
        saved.append(len(count))
        names.append(list(model.state_dict()))
    assert saved[1] < saved[0] and names[1] == names[0]
    for (name, g), other in zip(grads[0].items(), grads[1].values(), strict=True):
        torch.testing.assert_close(other, g, msg=name)


def test_matches_hf_llama(layout, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    hf_cfg = LlamaConfig(
        vocab_size=layout.vocab.size,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 5000.0},
    )
    LlamaForCausalLM(hf_cfg).save_pretrained(tmp_path)
    hf = LlamaForCausalLM.from_pretrained(tmp_path, local_files_only=True).eval()
    model = build_model(
        {"init_from_hf": str(tmp_path), "dim": None, "max_seq_len": 512}, layout
    ).eval()
    assert model.cfg.n_kv_heads == 2 and model.cfg.rope_theta == 5000.0 and model.cfg.ffn_dim == 160
    tokens = torch.randint(0, layout.vocab.size, (2, 50))
    with torch.no_grad():
        theirs = hf(tokens, output_hidden_states=True)
        ours_hidden = model.hidden(tokens)  # no roles/slots: the plain Llama path
        ours = model(tokens)
    torch.testing.assert_close(ours_hidden, theirs.hidden_states[-1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours, theirs.logits, atol=1e-5, rtol=1e-4)
    with pytest.raises(ConfigError, match="differs"):  # a yaml value contradicting the checkpoint
        build_model({"init_from_hf": str(tmp_path), "dim": 128}, layout)


def test_hf_missing_dir(layout, tmp_path):
    with pytest.raises(ConfigError, match="config.json"):
        build_model({"init_from_hf": str(tmp_path)}, layout)


@pytest.mark.parametrize("size", ["tiny", "small", "base", "large"])
def test_size_configs_build(layout, size):
    cfg = compose("train", [f"model={size}"]).model
    expected = {
        "tiny": (2e6, 5e6),
        "small": (15e6, 60e6),
        "base": (250e6, 400e6),
        "large": (0.8e9, 1.3e9),
    }
    with torch.device("meta"):
        model = build_model(cfg, layout)
    lo, hi = expected[size]
    assert lo < model.num_params() < hi
    assert model.cfg.vocab_size == layout.vocab.size


def test_bad_model_config_raises(layout):
    with pytest.raises(ConfigError, match="divisible"):
        ModelConfig(vocab_size=10, dim=65, n_heads=4)
    with pytest.raises(ConfigError, match="multiple of"):
        ModelConfig(vocab_size=10, dim=64, n_heads=4, n_kv_heads=3)
    with pytest.raises(ConfigError, match="attn_impl"):
        ModelConfig(vocab_size=10, attn_impl="xformers")
    with pytest.raises(ConfigError, match="unknown model config keys"):
        build_model({"dimension": 64}, layout)
    with pytest.raises(ConfigError, match="comes from the tokenizers"):
        build_model({"vocab_size": 64}, layout)
