"""`python -m vidchat.data.speakervid cut ...`: tools for the SpeakerVid-5M release."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vidchat.cli import ArgumentParser, exit_on_user_error


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m vidchat.data.speakervid")
    sub = parser.add_subparsers(dest="command", required=True)
    cut = sub.add_parser("cut", help="cut the annotated clips out of downloaded source videos")
    cut.add_argument(
        "--release",
        type=Path,
        required=True,
        help="the release root (merged_anno/, SFT_set.json, ...)",
    )
    cut.add_argument("--sources", type=Path, required=True, help="downloaded source videos")
    cut.add_argument(
        "--out",
        type=Path,
        required=True,
        help="clip folder: {out}/{ytid}/{stem}.mp4 and .wav (data.video_dir)",
    )
    cut.add_argument(
        "--source-pattern",
        default="{ytid}.mp4",
        help="source file name under --sources (default {ytid}.mp4)",
    )
    cut.add_argument("--workers", type=int, default=1, help="processes cutting in parallel")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logging.getLogger("vidchat").addHandler(handler)
    if args.workers < 1:
        print(f"error: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        sys.exit(2)
    from vidchat.data.speakervid.cut import run_cut

    report = exit_on_user_error(
        lambda: run_cut(args.release, args.sources, args.out, args.source_pattern, args.workers)
    )
    print(
        f"cut {report['cut']} clips ({report['already_done']} already done) of "
        f"{report['clips']} into {args.out}"
    )
    for key in ("missing_source", "broken_source"):
        entries = report[key]
        if entries:
            sources = sorted({e["detail"].split(": ")[0] for e in entries})
            print(
                f"warning: {len(entries)} clips skipped, {key.replace('_', ' ')} "
                f"({len(sources)} files, e.g. {sources[0]}); listed in "
                f"{args.out / 'cut_report.json'}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
