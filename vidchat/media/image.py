"""Still images (reference faces): PNG/JPG in and PNG out via PyAV's image codecs."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vidchat.media.errors import MediaError
from vidchat.media.frames import Size, parse_size, resize_frame
from vidchat.utils.atomic import atomic_path


def read_image(path: str | Path, size: Size | None = None) -> np.ndarray:
    """PNG/JPG/any still FFmpeg decodes -> `[H,W,3] uint8` RGB, resized to `size` if given."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: image not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: image file is empty")
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise MediaError(f"{path}: not an image")
            for frame in container.decode(video=0):
                return resize_frame(frame, parse_size(size))
    except av.FFmpegError as exc:
        raise MediaError(f"{path}: cannot decode image ({exc})") from exc
    raise MediaError(f"{path}: image has no decodable frame")


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """`[H,W,3] uint8` -> PNG at `path`, atomically."""
    path = Path(path)
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise MediaError(f"{path}: image must be [H,W,3] uint8, got {image.shape} {image.dtype}")
    with (
        atomic_path(path, suffix=".tmp.png") as tmp,
        av.open(str(tmp), mode="w", format="image2", options={"update": "1"}) as out,
    ):
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "rgb24"
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
