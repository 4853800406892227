"""Read and write clips with PyAV (no torch models here): `read_clip`, `write_clip`, images."""

from vidchat.media.clip import Clip
from vidchat.media.errors import MediaError
from vidchat.media.frames import centre_square, crop_resize, parse_size
from vidchat.media.image import read_image, write_image
from vidchat.media.read import MediaInfo, probe, read_clip, set_decode_threads
from vidchat.media.write import write_clip, write_wav

__all__ = [
    "Clip",
    "MediaError",
    "MediaInfo",
    "centre_square",
    "crop_resize",
    "parse_size",
    "probe",
    "read_clip",
    "read_image",
    "set_decode_threads",
    "write_clip",
    "write_wav",
    "write_image",
]
