"""Cartoon talking heads: a big face filling the frame, high-contrast mouth, blinks, head motion.

All geometry is relative to the frame side, so the same face reads at 64x64 (rendered) and at
32x32 (what the tokenizer sees). `measure_mouth_opening` reads the mouth back from the pixels: it
is the lip-sync oracle for tests and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidchat.data.demo_world.identities import Identity
from vidchat.perception.ssim import luma

SUPERSAMPLE = 2  # render at 2x and average 2x2 blocks: anti-aliased edges
HEAD_Y = 0.45  # head centre (fraction of the frame height)
MOUTH_Y = 0.21  # mouth centre below the head centre
MOUTH_HALF_WIDTH = 0.13
MOUTH_MAX_HALF_OPEN = 0.075
LIP_THICKNESS = 0.02
MOUTH_INTERIOR: tuple[int, int, int] = (35, 8, 18)
LIPS: tuple[int, int, int] = (200, 80, 90)
# emotion -> mouth-corner lift (fraction of the frame; positive = corners up = smile)
CURVATURE = {"happy": 0.05, "neutral": 0.0, "sad": -0.045}
# emotion -> (brow lift, brow tilt, eye opening), used by worlds with `data.expression=face`:
# lift raises both brows (fraction of the frame), tilt turns each about its centre (radians,
# + = inner end up), the eye opening scales the eyes, as in real faces: narrowed "smiling eyes"
# in joy, brows with their inner ends drawn up in sadness
UPPER_FACE = {"happy": (0.0, 0.0, 0.55), "neutral": (0.0, 0.0, 1.0), "sad": (0.01, 0.4, 1.0)}
# pixel box the oracle looks in (rows, cols as fractions): holds the mouth under any head motion
MOUTH_BOX = ((0.55, 0.80), (0.32, 0.68))
MOUTH_BAND = 0.09  # oracle: mouth pixels lie within this (frame heights) of the mouth's centre row
_DARK_LO, _DARK_HI = 35.0, 75.0  # luma: below LO counts fully as mouth interior, above HI not
_FULL_OPEN_FRACTION = 0.30  # dark fraction of MOUTH_BOX with the mouth fully open (calibrated)


@dataclass
class FaceTrack:
    """Per-frame face state of one clip, all `[T]` except `curvature`."""

    mouth_open: np.ndarray  # [T] in [0, 1]
    eye_open: np.ndarray  # [T] in [0, 1] (blinks)
    dx: np.ndarray  # [T] head offset, fraction of the width
    dy: np.ndarray  # [T] head offset, fraction of the height
    curvature: float  # mouth-corner lift (emotion)
    brow_lift: float = 0.0  # brows raised by this fraction of the frame (emotion; 0: at rest)
    brow_tilt: float = 0.0  # each brow turned about its centre, radians, + = inner end up


def _ellipse(y, x, cy, cx, ry, rx) -> np.ndarray:
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def _brow(y, x, track: FaceTrack, sign: float, cy: float, ry: float, rx: float) -> np.ndarray:
    """One brow (`sign` -1 left, +1 right) as an ellipse centred `cy` at rest, raised by
    `track.brow_lift` and turned by `track.brow_tilt` (inner end up); at rest exactly
    `_ellipse`, so faces without an expression keep every pixel."""
    cx = 0.5 + sign * 0.115
    if not (track.brow_lift or track.brow_tilt):
        return _ellipse(y, x, cy, cx, ry, rx)
    angle = sign * track.brow_tilt  # image rows grow downwards: the inner end goes up
    dy, dx = y - (cy - track.brow_lift), x - cx
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    return (across / ry) ** 2 + (along / rx) ** 2 <= 1.0


def _paint(canvas: np.ndarray, mask: np.ndarray, colour) -> None:
    """canvas [T,H,W,3] float32; mask [T,H,W] bool (or broadcastable)."""
    mask = np.broadcast_to(mask, canvas.shape[:3])
    canvas[mask] = np.asarray(colour, np.float32)


def _window(coords: np.ndarray, lo: float, hi: float) -> slice:
    """Index range of `coords` (sorted) inside [lo, hi)."""
    return slice(int(np.searchsorted(coords, lo)), int(np.searchsorted(coords, hi)))


def render_face(
    identity: Identity, track: FaceTrack, size: int, detailed: bool = False
) -> np.ndarray:
    """Draw `identity` following `track` -> frames [T, size, size, 3] uint8.

    `detailed` adds shading that a real face detector looks for (eye sockets, a nose with
    nostrils, dark brows, the jaw line): dlib's HOG detector finds 10 of 32 plain demo faces and
    28 of 32 detailed ones at 64 px; with highlights and fixed-step shadows, 31 of 32 demo
    identities are found on at least 4 of 6 frames (72-88 px, random backgrounds). The curation test sources use it; the clip world keeps the
    plain faces its checkpoints were trained on.

    The still parts are drawn once on a padded canvas; eyes and mouth are drawn per frame in
    small windows; head motion then shifts each frame by whole supersampled pixels (1/128 of the
    frame at 64 px), which keeps the renderer fast enough for hundreds of clips on a CPU.
    """
    side = size * SUPERSAMPLE
    pad = int(np.ceil(0.06 * side))
    coords = (np.arange(side + 2 * pad, dtype=np.float32) - pad + 0.5) / side
    still = _still_face(identity, coords, track)  # [1,P,P,3]
    if detailed:
        _add_details(still, identity, coords, track)
    canvas = np.repeat(still, len(track.mouth_open), axis=0)  # [T,P,P,3]
    _draw_eyes(canvas, coords, track)
    _draw_mouth(canvas, coords, track)
    return _move_and_downsample(canvas, track, side, pad)


def _still_face(identity: Identity, coords: np.ndarray, track: FaceTrack) -> np.ndarray:
    """What does not move within a clip: background, hair, body, head, brows (where the track's
    expression puts them), nose -> [1,P,P,3]."""
    y = coords[None, :, None]  # [1,P,1]
    x = coords[None, None, :]  # [1,1,P]
    cx, cy = 0.5, HEAD_Y
    rx, ry = 0.30 * identity.face_width, 0.37 * identity.face_height
    skin = np.asarray(identity.skin, np.float32)
    base = np.empty((1, len(coords), len(coords), 3), np.float32)  # [1,P,P,3]
    base[:] = np.asarray(identity.background, np.float32)
    # hair behind the head (long / high styles)
    if identity.hair_style == 1:
        behind = _ellipse(y, x, cy + 0.06, cx, ry * 1.02, rx * 1.22) & (y < cy + 0.3)
        _paint(base, behind, identity.hair)
    elif identity.hair_style == 2:
        _paint(base, _ellipse(y, x, cy - ry * 0.75, cx, 0.17, rx * 0.85), identity.hair)
    # body: shirt and neck
    _paint(base, _ellipse(y, x, 1.18, cx, 0.36, 0.48), identity.shirt)
    _paint(base, (np.abs(x - cx) < 0.09) & (y > cy + 0.25) & (y < 0.86), skin * 0.88)
    # head, then the hair cap over its top; brows, nose
    _paint(base, _ellipse(y, x, cy, cx, ry, rx), skin)
    hairline = {0: 0.46, 1: 0.42, 2: 0.55}[identity.hair_style] * ry
    cap = _ellipse(y, x, cy - 0.01, cx, ry * 1.04, rx * 1.06) & (y < cy - hairline)
    _paint(base, cap, identity.hair)
    for sign in (-1.0, 1.0):
        _paint(base, _brow(y, x, track, sign, cy - 0.125, 0.014, 0.065), identity.hair)
    _paint(base, _ellipse(y, x, cy + 0.045, cx, 0.035, 0.025), skin * 0.8)
    return base


def _add_details(
    base: np.ndarray, identity: Identity, coords: np.ndarray, track: FaceTrack
) -> None:
    """Forehead and nose-bridge highlights; eye sockets, nose, nostrils, dark brows and a jaw
    shadow, each at least a fixed step darker than the skin so that dark skin keeps its
    contrast (in place)."""
    y = coords[None, :, None]  # [1,P,1]
    x = coords[None, None, :]  # [1,1,P]
    cx, cy = 0.5, HEAD_Y
    skin = np.asarray(identity.skin, np.float32)

    def shade(factor: float, step: float) -> np.ndarray:
        return np.clip(np.minimum(skin * factor, skin - step), 0, 255)

    light = np.clip(skin * 1.12 + 18, 0, 255)
    _paint(base, _ellipse(y, x, cy - 0.2, cx, 0.06, 0.14), light)
    _paint(base, (np.abs(x - cx + 0.012) < 0.01) & (y > cy - 0.06) & (y < cy + 0.06), light)
    brow = np.asarray(identity.hair, np.float32) * 0.5
    for sign in (-1.0, 1.0):
        _paint(base, _ellipse(y, x, cy - 0.06, cx + sign * 0.115, 0.07, 0.085), shade(0.72, 35))
        _paint(base, _ellipse(y, x, cy + 0.085, cx + sign * 0.03, 0.012, 0.018), shade(0.45, 70))
        _paint(base, _brow(y, x, track, sign, cy - 0.135, 0.02, 0.075), brow)
    _paint(
        base, (np.abs(x - cx - 0.02) < 0.012) & (y > cy - 0.03) & (y < cy + 0.07), shade(0.65, 35)
    )
    rx, ry = 0.30 * identity.face_width, 0.37 * identity.face_height
    jaw = _ellipse(y, x, cy, cx, ry, rx) & ~_ellipse(y, x, cy, cx, ry * 0.95, rx * 0.93)
    _paint(base, jaw & (y > cy), shade(0.7, 35))


def _draw_eyes(canvas: np.ndarray, coords: np.ndarray, track: FaceTrack) -> None:
    """Sclera and pupil, squashed by blinks, drawn in a window around the eyes (in place)."""
    cx, cy = 0.5, HEAD_Y
    eye_open = np.clip(track.eye_open, 0.08, 1.0).astype(np.float32)[:, None, None]  # [T,1,1]
    rows = _window(coords, cy - 0.1, cy)
    cols = _window(coords, cx - 0.2, cx + 0.2)
    win = canvas[:, rows, cols]  # view [T,h,w,3]
    wy, wx = coords[rows][None, :, None], coords[cols][None, None, :]
    for sign in (-1.0, 1.0):
        ex, ey = cx + sign * 0.115, cy - 0.05
        _paint(win, _ellipse(wy, wx, ey, ex, 0.04 * eye_open, 0.06), (245, 245, 245))
        _paint(win, _ellipse(wy, wx, ey, ex, 0.032 * eye_open, 0.032), (25, 20, 30))


def _draw_mouth(canvas: np.ndarray, coords: np.ndarray, track: FaceTrack) -> None:
    """A lens of dark interior between lips, bent by the emotion curvature (in place)."""
    cx, my = 0.5, HEAD_Y + MOUTH_Y
    rows = _window(coords, my - 0.16, my + 0.16)
    cols = _window(coords, cx - 0.16, cx + 0.16)
    win = canvas[:, rows, cols]
    wy, wx = coords[rows][None, :, None], coords[cols][None, None, :]
    u = (wx - cx) / MOUTH_HALF_WIDTH  # [1,1,w]
    centre = my - track.curvature * u**2  # [1,1,w] lip centre line
    half_open = (MOUTH_MAX_HALF_OPEN * np.clip(track.mouth_open, 0, 1)).astype(np.float32)
    lens = half_open[:, None, None] * np.sqrt(np.clip(1 - u**2, 0, None))  # [T,1,w]
    dist = np.abs(wy - centre)  # [1,h,w]
    _paint(win, (np.abs(u) < 1.08) & (dist < lens + LIP_THICKNESS), LIPS)
    _paint(win, (np.abs(u) < 1.0) & (dist < lens), MOUTH_INTERIOR)


def _move_and_downsample(canvas: np.ndarray, track: FaceTrack, side: int, pad: int) -> np.ndarray:
    """Head motion: shift each frame by whole supersampled pixels, [T,P,P,3] -> [T,s,s,3], then
    average SUPERSAMPLE x SUPERSAMPLE blocks -> [T,H,W,3] uint8."""
    num_frames = canvas.shape[0]
    shift_x = np.clip(np.round(track.dx * side).astype(int), -pad, pad)
    shift_y = np.clip(np.round(track.dy * side).astype(int), -pad, pad)
    frames = np.empty((num_frames, side, side, 3), np.float32)
    for t in range(num_frames):
        r0, c0 = pad - shift_y[t], pad - shift_x[t]
        frames[t] = canvas[t, r0 : r0 + side, c0 : c0 + side]
    s = SUPERSAMPLE  # strided sums: fast
    frames = sum(frames[:, i::s, j::s] for i in range(s) for j in range(s)) / (s * s)
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def measure_mouth_opening(frames: np.ndarray) -> np.ndarray:
    """How open the mouth is in each frame, from pixels alone -> [T] (~0 closed, ~1 fully open).

    frames: `[T,H,W,3]` uint8 of a demo face at any resolution (e.g. 64 rendered, 32 tokenized).
    Measures the dark (mouth-interior) area inside `MOUTH_BOX`, so it needs no landmarks.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    h, w = frames.shape[1:3]
    (r0, r1), (c0, c1) = MOUTH_BOX
    box = frames[:, round(r0 * h) : round(r1 * h), round(c0 * w) : round(c1 * w)].astype(np.float32)
    dark = np.clip((_DARK_HI - luma(box)) / (_DARK_HI - _DARK_LO), 0.0, 1.0)
    return dark.mean(axis=(1, 2)) / _FULL_OPEN_FRACTION


def neutral_track(num_frames: int = 1) -> FaceTrack:
    """Still, eyes open, mouth closed, no emotion: the reference pose."""
    zeros = np.zeros(num_frames)
    return FaceTrack(zeros, np.ones(num_frames), zeros, zeros, 0.0)


def mouth_curvature(frames: np.ndarray) -> np.ndarray:
    """Mouth-corner lift per frame from pixels alone -> [T] (fractions of the frame height).

    Lip and mouth-interior pixels (red or dark) inside `MOUTH_BOX` give, per column, the mouth's
    mean row; a parabola `row = a + c*u^2` fitted over the columns (u = -1..1 across the mouth)
    has `-c` ~ `CURVATURE[emotion]`: positive for a smile, negative for a frown. Works at the
    rendered 64 px and at the tokenizer's 32 px.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    h, w = frames.shape[1:3]
    (r0, r1), (c0, c1) = MOUTH_BOX
    top, left = round(r0 * h), round(c0 * w)
    box = frames[:, top : round(r1 * h), left : round(c1 * w)].astype(np.float32)  # [T,h',w',3]
    redness = box[..., 0] - box[..., 1]  # [T,h',w']
    box_luma = luma(box)  # [T,h',w']
    # lips are red against the face's own skin: a reddish skin (procedural faces) sets the bar
    skin = np.median(redness, axis=(1, 2), keepdims=True)  # [T,1,1]: most of the box is skin
    lo = np.maximum(70.0, skin + 20.0)
    weight = np.maximum(np.clip((redness - lo) / 40, 0, 1), np.clip((75 - box_luma) / 40, 0, 1))
    rows = (np.arange(box.shape[1]) + 0.5 + top) / h  # [h']
    u = ((np.arange(box.shape[2]) + 0.5 + left) / w - 0.5) / MOUTH_HALF_WIDTH  # [w']
    lift = np.zeros(len(box))
    middle = np.abs(u) < 0.5  # [w']: the mouth's centre, which shirt or hair never reach
    for t, wt in enumerate(weight):
        core = wt[:, middle]
        if core.sum() > 0.5:  # keep the rows near the mouth: drops shirt or hair in the corners
            row0 = (core * rows[:, None]).sum() / core.sum()
            wt = wt * (np.abs(rows - row0) <= MOUTH_BAND)[:, None]
        mass = wt.sum(0)  # [w']
        ok = (mass > 0.5) & (np.abs(u) < 1.05)
        if ok.sum() < 3:
            continue
        centre_row = (wt * rows[:, None]).sum(0)[ok] / mass[ok]
        design = np.stack([np.ones(ok.sum()), u[ok] ** 2], 1)
        coef, *_ = np.linalg.lstsq(design, centre_row, rcond=None)
        lift[t] = -coef[1]
    return lift


def classify_emotion(frames: np.ndarray) -> str:
    """The emotion a demo face shows, from the median mouth curvature of its frames."""
    lift = float(np.median(mouth_curvature(frames)))
    half = CURVATURE["happy"] / 2
    return "happy" if lift > half else "sad" if lift < -abs(CURVATURE["sad"]) / 2 else "neutral"
