"""Train any vidchat stage: `python -m vidchat.train stage=pretrain` (or `python train.py ...` in
a checkout). Hydra composes the packaged `vidchat/configs/train.yaml`; `stage.entry` names the
function that runs the stage."""

from vidchat.cli import hydra_main


def main() -> None:
    hydra_main(config_name="train")


if __name__ == "__main__":
    main()
