"""Frame geometry helpers: size parsing, normalised bbox crop, resize (swscale via PyAV)."""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np

Size = int | tuple[int, int] | Sequence[int]


def parse_size(size: Size | None) -> tuple[int, int] | None:
    """`32` -> (32, 32); `(H, W)` -> (H, W); None -> None."""
    if size is None:
        return None
    if isinstance(size, int | np.integer):
        h = w = int(size)
    else:
        values = [int(v) for v in size]
        if len(values) != 2:
            raise ValueError(f"size must be an int or (H, W), got {size!r}")
        h, w = values
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


def bbox_to_pixels(bbox: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Normalised `[x1, y1, x2, y2]` in [0, 1] -> integer pixel box (x1, y1, x2, y2), never empty."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    px1 = int(np.clip(round(x1 * width), 0, width - 1))
    py1 = int(np.clip(round(y1 * height), 0, height - 1))
    px2 = int(np.clip(round(x2 * width), px1 + 1, width))
    py2 = int(np.clip(round(y2 * height), py1 + 1, height))
    return px1, py1, px2, py2


def centre_square(width: int, height: int) -> list[float]:
    """The normalised bbox `[x1, y1, x2, y2]` of the largest centred square of a frame (to read
    a non-square recording, e.g. a face shot, at a square tokenizer size)."""
    return square_bbox(None, width, height)


def square_bbox(bbox: Sequence[float] | None, width: int, height: int) -> list[float]:
    """The largest centred square inside `bbox` (normalised; None = the whole frame) of a
    `width` x `height` frame, as a normalised bbox."""
    x1, y1, x2, y2 = bbox if bbox is not None else (0.0, 0.0, 1.0, 1.0)
    side = min((x2 - x1) * width, (y2 - y1) * height)
    cx, cy = (x1 + x2) / 2 * width, (y1 + y2) / 2 * height
    return [
        (cx - side / 2) / width,
        (cy - side / 2) / height,
        (cx + side / 2) / width,
        (cy + side / 2) / height,
    ]


def crop_resize(
    image: np.ndarray, size: tuple[int, int] | None, bbox: Sequence[float] | None = None
) -> np.ndarray:
    """Crop `[H,W,3] uint8` to a normalised bbox, then resize to (H', W') -> `[H',W',3] uint8`."""
    if bbox is not None:
        x1, y1, x2, y2 = bbox_to_pixels(bbox, image.shape[0], image.shape[1])
        image = image[y1:y2, x1:x2]
    if size is None or tuple(image.shape[:2]) == tuple(size):
        return np.ascontiguousarray(image)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return resize_frame(frame, size)


def resize_frame(frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    """Decoded frame (any pixel format) -> `[H,W,3] uint8` RGB at `size` (H, W), area filter."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    h, w = size
    shrinking = h * w <= frame.height * frame.width
    out = frame.reformat(
        width=w, height=h, format="rgb24", interpolation="AREA" if shrinking else "BICUBIC"
    )
    return out.to_ndarray()
