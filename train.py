"""Train any vidchat stage: `python train.py stage=pretrain`, `stage=sft`, `stage=video_tokenizer`, ...

A thin dispatcher: Hydra composes `configs/train.yaml`; `stage.entry` names the function that runs
the stage (`package.module:function`), which receives the whole config.
"""

from vidchat.cli import hydra_main

if __name__ == "__main__":
    hydra_main(config_name="train")
