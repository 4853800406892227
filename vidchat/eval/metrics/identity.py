"""Identity: does the generated person look like the reference image?

Default: dlib's 128-d face ResNet (eval extra, weights in `face-recognition-models`); the
headline is the mean cosine similarity of generated faces to the reference face, and
`distance` the mean Euclidean descriptor distance (dlib's same-person threshold is 0.6).
`arcface_similarity` does the same with user-given ArcFace ONNX weights (the paper's metric).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidchat.eval.metrics.result import MetricResult
from vidchat.perception.frames import check_frames
from vidchat.perception.weights import missing_extra, user_weights

Embedder = Callable[[np.ndarray], "np.ndarray | None"]  # [H,W,3] uint8 -> [D] or None (no face)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def embedding_similarity(
    name: str, frames: np.ndarray, reference_image: np.ndarray, embed: Embedder, stride: int = 1
) -> MetricResult:
    """Mean cosine similarity of `embed` over every `stride`-th frame to the reference's."""
    frames = check_frames(frames, "generated frames")
    reference = check_frames(reference_image, "reference image")[0]
    ref = embed(reference)
    if ref is None:
        return MetricResult.unavailable(name, "no face detected in the reference image")
    used = frames[:: max(1, stride)]
    embs = [e for e in (embed(f) for f in used) if e is not None]
    face_rate = len(embs) / len(used)
    if not embs:
        return MetricResult.unavailable(name, "no face detected in any generated frame")
    sims = [_cosine(e, ref) for e in embs]
    dists = [float(np.linalg.norm(e - ref)) for e in embs]
    details = {"distance": float(np.mean(dists)), "face_rate": face_rate, "frames": len(embs)}
    return MetricResult(name, float(np.mean(sims)), details)


def identity_similarity(
    frames: np.ndarray, reference_image: np.ndarray, stride: int = 1
) -> MetricResult:
    """dlib ResNet identity similarity of generated `[T,H,W,3]` frames to a `[H,W,3]` reference."""
    from vidchat.perception.faces import face_embedding, faces_unavailable_reason

    reason = faces_unavailable_reason()
    if reason:
        return MetricResult.unavailable("identity", reason)
    return embedding_similarity("identity", frames, reference_image, face_embedding, stride)


# ArcFace's canonical 112x112 positions of eyes, nose tip and mouth corners (insightface).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation+scale+translation (Umeyama) mapping src [N,2] onto dst: [2,3]."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    e = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ e @ vt
    scale = (sig * np.diag(e)).sum() / (s**2).sum(1).mean()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Sample `[H,W,3] uint8` at the inverse of `matrix` (image->output) -> [size,size,3] float."""
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    inv = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]  # output px -> image px
    ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    pts = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3) @ inv.T  # [size*size,2]
    grid = np.stack([pts[:, 0] / (w - 1) * 2 - 1, pts[:, 1] / (h - 1) * 2 - 1], -1)
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double()
    g = torch.from_numpy(grid).view(1, size, size, 2)
    out = F.grid_sample(img, g, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0].permute(1, 2, 0).numpy()


def arcface_embedder(weights: Path) -> Embedder:
    """Embedder for an insightface-style ArcFace ONNX: RGB 112x112, (x-127.5)/127.5, NCHW."""
    import onnxruntime as ort

    from vidchat.perception.faces import detect_face, five_points

    session = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def embed(image: np.ndarray) -> np.ndarray | None:
        face = detect_face(image)
        if face is None:
            return None
        m = similarity_transform(five_points(face.landmarks), ARCFACE_TEMPLATE)
        chip = (warp_affine(image, m, 112) - 127.5) / 127.5  # [112,112,3]
        x = chip.transpose(2, 0, 1)[None].astype(np.float32)
        return np.asarray(session.run(None, {input_name: x})[0]).reshape(-1).astype(np.float64)

    return embed


def arcface_similarity(
    frames: np.ndarray,
    reference_image: np.ndarray,
    weights: str | Path | None = None,
    stride: int = 1,
) -> MetricResult:
    """ArcFace cosine similarity with user-given ONNX weights (skipped when none are given)."""
    import importlib.util

    from vidchat.perception.faces import faces_unavailable_reason

    path = user_weights(weights, "arcface")
    if path is None:
        return MetricResult.unavailable(
            "arcface", "no ArcFace ONNX weights given (arcface.weights)"
        )
    reason = faces_unavailable_reason()
    if importlib.util.find_spec("onnxruntime") is None:
        reason = missing_extra("onnxruntime")
    if reason:
        return MetricResult.unavailable("arcface", reason)
    return embedding_similarity("arcface", frames, reference_image, arcface_embedder(path), stride)
