"""Train any vidchat stage: `python train.py stage=pretrain`, `stage=sft`, `stage=video_tokenizer`, ...

A thin entry point over `python -m vidchat.train`: Hydra composes `configs/train.yaml`;
`stage.entry` names the function that runs the stage (`package.module:function`).
"""

from vidchat.train import main

if __name__ == "__main__":
    main()
