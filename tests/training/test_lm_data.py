"""LM data: loss masks per branch, reference choice, batching, resumable sampling."""

import pytest
import torch
from lm_fixtures import make_datasets, synthetic_records, synthetic_store

from vidchat.data.lm_dataset import LMCollator, ResumableSampler
from vidchat.model import Modality, Role, Vocab


def test_sft_loss_mask_covers_exactly_the_responder_tokens(layout):
    train, _ = make_datasets(layout, sft=True)
    item = train[0]
    seq, mask = item.seq, item.loss_mask
    responder = (seq.roles == Role.RESPONDER) & (seq.tokens != Vocab.responder)
    assert torch.equal(mask, responder)
    # every responder code token and the closing <eot> are targets; nothing of the partner is
    assert mask[seq.roles == Role.PARTNER].sum() == 0
    assert mask[seq.roles == Role.REF].sum() == 0
    codes = (seq.roles == Role.RESPONDER) & (seq.modality != Modality.SPECIAL)
    assert mask[codes].all()
    assert seq.tokens[mask][-1] == Vocab.eot


def test_pretrain_loss_mask_starts_after_the_reference(layout):
    train, _ = make_datasets(layout, sft=False)
    item = train[0]
    assert not item.loss_mask[: item.seq.ref_end].any()
    assert item.loss_mask[item.seq.ref_end :].all()


def test_reference_prefers_the_stored_image_then_another_clip_of_the_speaker(layout):
    store = synthetic_store(layout)
    train, _ = make_datasets(layout, sft=False)
    by_clip = {ex.segments[-1][1]: (i, ex) for i, ex in enumerate(train.examples)}
    i, ex = by_clip["clip00"]  # has a reference image
    ref = train[i].seq.tokens[2 : 2 + 4] - Vocab.num_special
    assert torch.equal(ref, store["clip00"].reference.reshape(-1))
    i, ex = by_clip["clip01"]  # no image: first frame of another clip of spk1 (clip05)
    assert ex.ref.fallback == "clip05"
    ref = train[i].seq.tokens[2 : 2 + 4] - Vocab.num_special
    assert torch.equal(ref, store["clip05"].video[0].reshape(-1))
    lonely = synthetic_records(store)[:1]
    from vidchat.data.lm_dataset import reference_picker

    assert reference_picker(lonely)("spk0", "clip00").fallback == "clip00"


def test_other_clip_reference_never_uses_the_image_nor_the_same_conversation(layout):
    from lm_fixtures import Rec

    from vidchat.data.lm_dataset import LMSequenceDataset, reference_picker, single_examples
    from vidchat.errors import ConfigError

    store = synthetic_store(layout)
    # conversation k holds clips 2k and 2k+1; spk0 speaks clips 0, 4 and 8 (conversations 0, 2, 4)
    records = [
        {"clip_id": r.clip_id, "speaker_id": r.speaker_id, "conversation": f"c{i // 2}"}
        for i, r in enumerate(synthetic_records(store))
    ]
    records.append({"clip_id": "clip12", "speaker_id": "spk0", "conversation": "c0"})
    conv = {r["clip_id"]: r["conversation"] for r in records}
    picker = reference_picker(records, "other_clip")
    picks = {r["clip_id"]: picker(r["speaker_id"], r["clip_id"]) for r in records}
    for cid, ref in picks.items():
        assert not ref.use_image and ref.fallback != cid
        assert conv[ref.fallback] != conv[cid]  # clip12 shares c0 with clip00: never picked
    assert picks["clip00"].fallback in ("clip04", "clip08")
    assert len({p.fallback for p in picks.values()}) > 4  # many clips, not one per speaker
    ex = single_examples([Rec("clip00", "spk0")], picker, "after_ref")  # clip00 has an image
    seq = LMSequenceDataset(ex, store, layout, max_seq_len=512)[0].seq
    ref = seq.tokens[2 : 2 + 4] - Vocab.num_special
    assert torch.equal(ref, store[picks["clip00"].fallback].video[0].reshape(-1))
    with pytest.raises(ConfigError, match="stage.reference"):
        reference_picker(records, "random")


def test_padding_and_packing_keep_every_token_and_mask(layout):
    train, _ = make_datasets(layout, sft=True)
    items = [train[i] for i in range(3)]
    padded = LMCollator("pad", 4096)(items)
    packed = LMCollator("pack", 4096)(items)
    assert padded["tokens"].shape[0] == 3 and packed["tokens"].shape[0] == 1
    for batch in (padded, packed):
        assert batch["valid"].sum() == sum(len(it.seq) for it in items)
        assert batch["loss_mask"].sum() == sum(int(it.loss_mask.sum()) for it in items)
        assert not (batch["loss_mask"] & ~batch["valid"]).any()
    assert torch.equal(packed["tokens"][0], torch.cat([it.seq.tokens for it in items]))
    lengths = [len(it.seq) for it in items]
    assert torch.equal(
        packed["documents"][0], torch.repeat_interleave(torch.arange(3), torch.tensor(lengths))
    )
    assert "documents" not in padded  # one sequence per row: plain causal attention
    assert (padded["tokens"][~padded["valid"]] == Vocab.pad).all()


def test_resumable_sampler_skips_exactly_the_consumed_samples():
    full = list(ResumableSampler(5, samples_per_rank=12, seed=3))
    assert sorted(full[:5]) == list(range(5)) and sorted(full[5:10]) == list(range(5))
    assert full[:5] != full[5:10]  # a new permutation every epoch
    assert list(ResumableSampler(5, samples_per_rank=12, seed=3, start=7)) == full[7:]
    ranks = [
        list(ResumableSampler(5, samples_per_rank=5, seed=3, rank=r, world_size=2)) for r in (0, 1)
    ]
    interleaved = [x for pair in zip(*ranks) for x in pair]
    assert interleaved == list(ResumableSampler(5, samples_per_rank=10, seed=3))
