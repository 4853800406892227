"""Start the backbone from a local Hugging Face Llama-family checkpoint (`model.init_from_hf`).

Our parameter names are Hugging Face Llama's without the `model.` prefix, so the mapping is a
prefix strip. Token embedding and output head are copied only when their vocabulary matches ours
(it usually does not: our vocabulary is audio-visual codes); otherwise they keep their fresh init.
Nothing is downloaded: `local_files_only=True`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidchat.errors import ConfigError

# our ModelConfig field -> Hugging Face LlamaConfig attribute
_ARCH_FIELDS = {
    "dim": "hidden_size",
    "n_layers": "num_hidden_layers",
    "n_heads": "num_attention_heads",
    "n_kv_heads": "num_key_value_heads",
    "head_dim": "head_dim",
    "ffn_dim": "intermediate_size",
    "norm_eps": "rms_norm_eps",
    "tie_embeddings": "tie_word_embeddings",
}


def _check_dir(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model.init_from_hf={path} is not a Hugging Face checkpoint dir (no config.json)"
        )
    return path


def hf_arch_fields(path: str | Path) -> dict[str, Any]:
    """The architecture fields of `ModelConfig` read from a checkpoint's config.json."""
    from transformers import AutoConfig

    hf = AutoConfig.from_pretrained(_check_dir(path), local_files_only=True)
    if getattr(hf, "hidden_act", "silu") != "silu" or getattr(hf, "attention_bias", False):
        raise ConfigError(f"model.init_from_hf={path}: only Llama-style (silu, no bias) models map")
    rope = getattr(hf, "rope_parameters", None) or {}
    rope_type = rope.get("rope_type", "default")
    if rope_type != "default":
        raise ConfigError(f"model.init_from_hf={path}: rope_type={rope_type!r} is not supported")
    out = {
        ours: getattr(hf, theirs) for ours, theirs in _ARCH_FIELDS.items() if hasattr(hf, theirs)
    }
    out["rope_theta"] = float(rope.get("rope_theta", getattr(hf, "rope_theta", 10000.0)))
    return out


def load_hf_backbone(model, path: str | Path) -> list[str]:
    """Copy a local Llama-family checkpoint's weights into `model`; return the keys not copied."""
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(
        _check_dir(path), local_files_only=True, dtype=torch.float32
    )
    ours = model.state_dict()
    skipped = []
    with torch.no_grad():
        for name, tensor in hf.state_dict().items():
            key = name.removeprefix("model.")
            if key not in ours:
                skipped.append(name)
            elif ours[key].shape != tensor.shape:
                if key in ("embed_tokens.weight", "lm_head.weight"):
                    skipped.append(name)  # different vocabulary: keep our init
                    continue
                raise ConfigError(
                    f"model.init_from_hf={path}: {name} has shape {list(tensor.shape)}, "
                    f"ours {list(ours[key].shape)}"
                )
            else:
                ours[key].copy_(tensor)
    return skipped
