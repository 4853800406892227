"""`python -m vidchat.curate input=RAW_DIR output=RELEASE_DIR [key=value ...]` (configs/curate.yaml)."""

from vidchat.cli import hydra_main


def main() -> None:
    from vidchat.curate.run import run

    hydra_main(config_name="curate", entry=run)


if __name__ == "__main__":
    main()
