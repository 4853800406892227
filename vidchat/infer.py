"""Answer a partner's clip as the responder: `python -m vidchat.infer --input clip.mp4`."""

from vidchat.inference.cli import main

if __name__ == "__main__":
    main()
