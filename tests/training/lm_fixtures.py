"""Tiny synthetic token data and a tiny LM, so training tests need no demo world or tokenizers.

Imported by name (`from lm_fixtures import ...`; a unique module name, unlike `conftest`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import OmegaConf

from vidchat.data.datamodule import LMDataModule
from vidchat.data.lm_dataset import (
    LMCollator,
    LMSequenceDataset,
    pair_examples,
    reference_picker,
    single_examples,
)
from vidchat.model import LayoutConfig, SequenceLayout, VidChatLM, build_model
from vidchat.training.config import RunConfig
from vidchat.training.lm.module import LMTrainingModule
from vidchat.training.lm.noise import NoiseConfig
from vidchat.training.optim import OptimConfig

CONFIG_DIR = __import__("pathlib").Path(__file__).resolve().parents[2] / "configs"


@dataclass
class FakeClip:
    video: torch.Tensor  # [T,h,w]
    audio: torch.Tensor  # [K,Ta]
    reference: torch.Tensor | None = None  # [h,w]


@dataclass
class Rec:
    clip_id: str
    speaker_id: str
    branch: str = "single"


@dataclass
class Pair:
    partner: Rec
    responder: Rec
    branch: str = "dialogue"
    history: list | None = None


def tiny_layout(head: str = "flat") -> SequenceLayout:
    """Video 2x2 codes at 4 fps (16 codes), audio 2 codebooks x 8 codes at 6 Hz, 0.5 s chunks;
    `head` is the video and audio head (flat or depth)."""
    return SequenceLayout(
        LayoutConfig(
            video_frame_rate=4,
            video_grid=(2, 2),
            video_codebook_size=16,
            audio_frame_rate=6,
            audio_num_codebooks=2,
            audio_codebook_size=8,
            video_head=head,
            audio_head="depth" if head == "maskgit" else head,
        )
    )


def synthetic_store(layout: SequenceLayout, n_clips: int = 12, seconds: float = 1.5, seed: int = 0):
    """`clip_id -> FakeClip` with random codes; every third clip has a reference image."""
    g = torch.Generator().manual_seed(seed)
    c = layout.cfg
    h, w = c.video_grid
    store = {}
    for i in range(n_clips):
        T, Ta = round(seconds * c.video_frame_rate), round(seconds * c.audio_frame_rate)
        video = torch.randint(0, c.video_codebook_size, (T, h, w), generator=g)
        audio = torch.randint(0, c.audio_codebook_size, (c.audio_num_codebooks, Ta), generator=g)
        ref = torch.randint(0, c.video_codebook_size, (h, w), generator=g) if i % 3 == 0 else None
        store[f"clip{i:02d}"] = FakeClip(video, audio, ref)
    return store


def synthetic_records(store) -> list[Rec]:
    return [Rec(cid, f"spk{i % 4}") for i, cid in enumerate(sorted(store))]


def synthetic_pairs(records: list[Rec]) -> list[Pair]:
    return [Pair(records[i], records[i + 1]) for i in range(0, len(records) - 1, 2)]


def tiny_model(layout: SequenceLayout, seed: int = 0) -> VidChatLM:
    torch.manual_seed(seed)
    return build_model({"dim": 32, "n_layers": 2, "n_heads": 2, "max_seq_len": 512}, layout)


def make_datasets(layout: SequenceLayout, sft: bool = False):
    store = synthetic_store(layout)
    records = synthetic_records(store)
    refs = reference_picker(records)
    if sft:
        examples = pair_examples(synthetic_pairs(records), refs, "responder")
    else:
        examples = single_examples(records, refs, "after_ref")
    train = LMSequenceDataset(examples[:-2], store, layout, max_seq_len=512)
    val = LMSequenceDataset(examples[-2:], store, layout, max_seq_len=512)
    return train, val


def make_module(
    layout: SequenceLayout, total_steps: int, noise: float = 0.2, seed: int = 0
) -> LMTrainingModule:
    return LMTrainingModule(
        tiny_model(layout, seed),
        layout,
        optim=OptimConfig(lr=3e-3, warmup_steps=2),
        noise=NoiseConfig(ratio=noise),
        total_steps=total_steps,
        seed=seed,
    )


def make_datamodule(
    layout, train, val, total_micro_batches: int, batch_size: int = 3, pack: bool = False
):
    return LMDataModule(
        train,
        val,
        batch_size=batch_size,
        collator=LMCollator("pack" if pack else "pad", 512),
        total_micro_batches=total_micro_batches,
        seed=0,
    )


def run_cfg(cfg) -> RunConfig:
    """The typed run config a stage's entry point would make from `cfg`."""
    return RunConfig.from_cfg(cfg, "test")


def trainer_cfg(**overrides):
    """configs/trainer/cpu.yaml + overrides, logger none."""
    tr = OmegaConf.load(CONFIG_DIR / "trainer" / "cpu.yaml")
    tr.merge_with(overrides)
    tr.enable_progress_bar = overrides.get("enable_progress_bar", False)
    return OmegaConf.create({"trainer": tr, "logger": {"type": "none"}, "run_name": "test"})


# ---- a synthetic "world" for whole-stage runs: folder manifest + token shards ---------------------
ROOT = CONFIG_DIR.parent
TINY_MODEL = [
    "model.dim=32",
    "model.n_layers=2",
    "model.n_heads=2",
    "model.ffn_multiple_of=16",
    "model.max_seq_len=1024",
]


def write_synthetic_world(
    root, n_conversations: int = 6, turns: int = 4, seconds: float = 1.0
) -> list[str]:
    """Folder manifest (2 speakers per conversation taking turns + a silent listener clip each)
    and matching token shards with the tiny layout; returns Hydra overrides that point at them."""
    import json

    import numpy as np

    from vidchat.data.shards import ShardWriter

    layout = tiny_layout()
    c = layout.cfg
    h, w = c.video_grid
    video_spec = {
        "modality": "video",
        "frame_rate": c.video_frame_rate,
        "num_codebooks": 1,
        "codebook_size": c.video_codebook_size,
        "grid": [h, w],
    }
    audio_spec = {
        "modality": "audio",
        "frame_rate": c.audio_frame_rate,
        "num_codebooks": c.audio_num_codebooks,
        "codebook_size": c.audio_codebook_size,
    }
    rng = np.random.default_rng(0)
    lines = []
    tokens = root / "tokens"
    with ShardWriter(
        tokens, meta={"video_spec": video_spec, "audio_spec": audio_spec}, clips_per_shard=16
    ) as wr:
        for conv in range(n_conversations):
            split = "val" if conv == 0 else "train"
            speakers = [f"s{(2 * conv) % 5}", f"s{(2 * conv + 1) % 5}"]
            for t in range(turns + 1):
                talking = t < turns
                spk = speakers[t % 2] if talking else speakers[1]
                cid = f"c{conv}_t{t}"
                rec = {
                    "clip_id": cid,
                    "path": f"{cid}.mp4",
                    "conversation": f"c{conv}",
                    "speaker_id": spk,
                    "time": float(t * seconds if talking else 0.0),
                    "duration": seconds,
                    "is_talking": talking,
                    "branch": "single" if talking else "listening",
                    "split": split,
                }
                lines.append(json.dumps(rec))
                T, Ta = round(seconds * c.video_frame_rate), round(seconds * c.audio_frame_rate)
                video = rng.integers(0, c.video_codebook_size, (T, h, w))
                audio = rng.integers(0, c.audio_codebook_size, (c.audio_num_codebooks, Ta))
                wr.add(cid, video, audio, {"clip_id": cid})
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return [
        "data=folder",
        f"data.root={root}",
        f"++data.tokens_dir={tokens}",
        "++data.name=synthetic",
        f"data.video.fps={c.video_frame_rate:g}",  # the rate the shards' video spec records
        f"paths.checkpoint_dir={root / 'checkpoints'}",
        f"paths.demo_checkpoint_dir={root / 'demo'}",
        f"paths.output_dir={root / 'outputs'}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        *TINY_MODEL,
    ]


def compose_train(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)
