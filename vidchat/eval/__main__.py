"""`python -m vidchat.eval [overrides]`: the VidChatBench runner (configs/eval.yaml)."""

from vidchat.cli import hydra_main


def main() -> None:
    from vidchat.eval.runner import run

    hydra_main(config_name="eval", entry=run)


if __name__ == "__main__":
    main()
