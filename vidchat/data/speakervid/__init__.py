"""The SpeakerVid-5M release: its clip names, annotation archives, list files, loader and the
`cut` tool (`python -m vidchat.data.speakervid cut --help`)."""

from vidchat.data.speakervid.loader import ReleaseOptions, load_speakervid
from vidchat.data.speakervid.names import ClipName, clip_stem, parse_clip_name

__all__ = ["ClipName", "ReleaseOptions", "clip_stem", "load_speakervid", "parse_clip_name"]
