"""SyncNet (the paper's Sync-C network) with user-given TorchScript weights: face crops, features
and the offset search; the metric is `vidchat.eval.metrics.syncnet`.

Contract for the file: a TorchScript export of the original SyncNet (syncnet_python) with
exported methods `forward_lip(x [N,3,5,224,224] float, 0-255 BGR)` and
`forward_aud(x [N,1,13,20] float MFCC)`, each returning `[N,D]`. The evaluation follows
syncnet_python: 25 fps face crops, 16 kHz MFCC, distances over offsets ±vshift, confidence =
median - minimum of the mean distance per offset. The offset is in frames with the sign of
`lip_sync`'s lag (positive = audio late), i.e. minus syncnet_python's AV offset.
"""

from __future__ import annotations

import numpy as np

from vidchat.perception.frames import resize_frames
from vidchat.perception.mfcc import mfcc

SYNC_FPS = 25
SYNC_RATE = 16000
CROP = 224


def sync_offsets(lip: np.ndarray, aud: np.ndarray, vshift: int = 15) -> tuple[int, float, float]:
    """lip [N,D], aud [N,D] features per video frame -> (offset, confidence, min distance).

    For each frame i the lip feature is compared with the audio features of frames
    i-vshift..i+vshift; the offset minimising the mean distance wins.
    """
    n = min(len(lip), len(aud))
    padded = np.pad(aud[:n], ((vshift, vshift), (0, 0)))
    win = 2 * vshift + 1
    dists = np.stack(
        [np.linalg.norm(lip[i][None] - padded[i : i + win] + 1e-6, axis=1) for i in range(n)]
    )  # [n, win]
    mean = dists.mean(0)
    best = int(np.argmin(mean))
    return best - vshift, float(np.median(mean) - mean[best]), float(mean[best])


def face_crops(frames: np.ndarray, scale: float = 0.4) -> np.ndarray | None:
    """[T,H,W,3] -> [T,224,224,3] crops around the dlib face box (last box held when missed),
    padded like syncnet_python's crop_video. None when no frame has a face."""
    from vidchat.perception.faces import detect_face

    boxes, last = [], None
    for f in frames:
        face = detect_face(f)
        last = face.box if face is not None else last
        boxes.append(last)
    first = next((b for b in boxes if b is not None), None)
    if first is None:
        return None
    return box_crops(frames, [box if box is not None else first for box in boxes], scale)


def box_crops(frames: np.ndarray, boxes: list, scale: float = 0.4) -> np.ndarray:
    """[T,H,W,3] and one (left, top, right, bottom) pixel box per frame -> [T,224,224,3] crops
    around each box, padded like syncnet_python's crop_video."""
    crops = []
    for f, (left, top, right, bottom) in zip(frames, boxes):
        bs = max(right - left, bottom - top) / 2
        pad = int(bs * (1 + 2 * scale))
        img = np.pad(f, ((pad, pad), (pad, pad), (0, 0)), constant_values=110)
        my, mx = (top + bottom) / 2 + pad, (left + right) / 2 + pad
        y0, y1 = int(my - bs), int(my + bs * (1 + 2 * scale))
        x0, x1 = int(mx - bs * (1 + scale)), int(mx + bs * (1 + scale))
        crops.append(resize_frames(img[None, y0:y1, x0:x1], CROP, CROP)[0])
    return np.stack(crops)


def crop_sync(
    net, crops: np.ndarray, wav: np.ndarray, vshift: int = 15, batch_size: int = 20
) -> tuple[int, float, float] | None:
    """SyncNet (a loaded TorchScript net, contract above) on `[T,224,224,3]` uint8 RGB face crops
    at 25 fps with their 16 kHz audio `[S]` -> (offset, confidence, min distance) as
    `sync_offsets`; None when fewer than 6 frames have audio."""
    feats = sync_features(net, crops, wav, batch_size)
    return None if feats is None else sync_offsets(*feats, vshift)


def sync_features(
    net, crops: np.ndarray, wav: np.ndarray, batch_size: int = 20
) -> tuple[np.ndarray, np.ndarray] | None:
    """SyncNet's lip and audio features `[n,D]` of each 5-frame window (window j: frames j..j+4
    of `[T,224,224,3]` uint8 RGB crops at 25 fps, and the MFCCs of the same 0.2 s of the 16 kHz
    `wav`); None when fewer than 6 frames have audio."""
    import torch

    cc = mfcc(wav, SYNC_RATE).T  # [13, N_mfcc] at 100 Hz: 4 per video frame
    n = min(len(crops), len(wav) // (SYNC_RATE // SYNC_FPS)) - 5
    if n < 1:
        return None
    video = (
        torch.from_numpy(crops[..., ::-1].copy()).permute(3, 0, 1, 2).float()
    )  # [3,T,224,224] BGR
    lips, auds = [], []
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            js = range(i, min(n, i + batch_size))
            lip_in = torch.stack([video[:, j : j + 5] for j in js])  # [B,3,5,224,224]
            aud_in = torch.stack(
                [torch.from_numpy(cc[None, :, 4 * j : 4 * j + 20]).float() for j in js]
            )  # [B,1,13,20]
            lips.append(net.forward_lip(lip_in).reshape(len(js), -1).numpy())
            auds.append(net.forward_aud(aud_in).reshape(len(js), -1).numpy())
    return np.concatenate(lips), np.concatenate(auds)
