"""A resumed run continues exactly: same losses, same weights as the uninterrupted run."""

import lightning as L
import torch
from lm_fixtures import make_datamodule, make_datasets, make_module, run_cfg, trainer_cfg

from vidchat.training.checkpoint_io import last_checkpoint
from vidchat.training.trainer import build_trainer

TOTAL = 6
ACCUM = 2


class LossRecorder(L.Callback):
    def __init__(self):
        self.losses: dict[int, float] = {}  # micro-batch index -> loss

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses[batch_idx] = float(outputs["loss"])


def _fit(layout, root, max_steps, resume=False):
    train, val = make_datasets(layout, sft=True)
    rec = LossRecorder()
    cfg = trainer_cfg(
        checkpoint_every_n_steps=3,
        accumulate_grad_batches=ACCUM,
        val_check_interval=3,
        limit_val_batches=1,
    )
    trainer = build_trainer(
        run_cfg(cfg),
        max_steps=max_steps,
        callbacks=[rec],
        default_root_dir=root,
        use_distributed_sampler=False,
    )
    module = make_module(layout, total_steps=TOTAL)
    dm = make_datamodule(layout, train, val, total_micro_batches=TOTAL * ACCUM, batch_size=2)
    ckpt = last_checkpoint(root) if resume else None
    trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None)
    return rec.losses, module


def test_resumed_run_reproduces_the_uninterrupted_run(layout, tmp_path):
    full, full_module = _fit(layout, tmp_path / "full", TOTAL)
    assert len(full) == TOTAL * ACCUM
    _fit(layout, tmp_path / "cut", 3)  # "crashes" after step 3 (checkpoint at step 3)
    assert (tmp_path / "cut" / "ckpt" / "last.ckpt").is_file()
    resumed, resumed_module = _fit(layout, tmp_path / "cut", TOTAL, resume=True)
    assert sorted(resumed) == list(range(3 * ACCUM, TOTAL * ACCUM))  # continues at the next batch
    for key, loss in resumed.items():
        assert loss == full[key], key  # exact: same data, noise, LR schedule and optimiser state
    for (name, a), b in zip(full_module.state_dict().items(), resumed_module.state_dict().values()):
        assert torch.equal(a, b), name
    assert [r["step"] for r in resumed_module.val_history] == [3.0, 6.0]  # history survives resume


def _fit_logged(layout, root, max_steps, resume=False):
    """A run with the CSV logger and checkpoints every 3 steps (keep 1)."""
    from omegaconf import OmegaConf

    train, val = make_datasets(layout, sft=True)
    cfg = trainer_cfg(
        checkpoint_every_n_steps=3,
        val_check_interval=3,
        limit_val_batches=1,
        log_every_n_steps=1,
        save_top_k=1,
    )
    cfg = OmegaConf.merge(cfg, {"logger": {"type": "csv"}, "resume": resume})
    trainer = build_trainer(
        run_cfg(cfg), max_steps=max_steps, default_root_dir=root, use_distributed_sampler=False
    )
    module = make_module(layout, total_steps=TOTAL)
    dm = make_datamodule(layout, train, val, total_micro_batches=TOTAL, batch_size=2)
    ckpt = last_checkpoint(root) if resume else None
    trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt) if ckpt else None)


def _log(root) -> list[tuple[str, str]]:
    import csv

    (version,) = (root / "csv").iterdir()  # one log, not one per restart
    rows = list(csv.DictReader((version / "metrics.csv").open()))
    return [(r["step"], r.get("train/loss", "")) for r in rows if r.get("train/loss")]


def test_a_crashed_run_resumes_into_one_log_and_keeps_its_checkpoints_tidy(tmp_path):
    from lm_fixtures import tiny_layout

    layout = tiny_layout()
    _fit_logged(layout, tmp_path / "full", TOTAL)
    crashed = tmp_path / "crashed"
    _fit_logged(layout, crashed, 5)  # logs steps 4 and 5 after its last checkpoint (step 3)...
    ckpt = crashed / "ckpt"
    last = last_checkpoint(crashed)
    (ckpt / "step0000006.ckpt").write_bytes(last.read_bytes())  # ...a step file it never tracked
    (ckpt / ".last.ckpt.k3j2.tmp").write_bytes(b"half")  # and a write cut off by the kill
    for late in ("step0000004.ckpt", "step0000005.ckpt"):
        (ckpt / late).unlink(missing_ok=True)
    _fit_logged(layout, crashed, TOTAL, resume=True)
    assert _log(crashed) == _log(tmp_path / "full")  # every step once, the same losses
    names = sorted(p.name for p in ckpt.iterdir())
    assert not [n for n in names if n.startswith(".") or "-v" in n], names
    assert names == sorted(p.name for p in (tmp_path / "full" / "ckpt").iterdir())
