"""Answer a partner's clip as the responder: `python infer.py --input clip.mp4` (see --help)."""

from vidchat.inference.cli import main

if __name__ == "__main__":
    main()
