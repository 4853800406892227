"""Demo identities: distinct face shape, colours and voice per person."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RGB = tuple[int, int, int]

# Hand-picked so that any two identities differ in several colours at 32x32 px.
_SKINS: list[RGB] = [
    (236, 200, 170),
    (205, 150, 110),
    (160, 110, 75),
    (122, 84, 58),
    (245, 215, 190),
    (190, 135, 95),
    (225, 180, 140),
    (142, 97, 66),
]
_HAIRS: list[RGB] = [
    (40, 30, 20),
    (125, 70, 30),
    (205, 175, 90),
    (20, 20, 25),
    (160, 45, 30),
    (95, 95, 100),
    (65, 42, 30),
    (235, 235, 225),
]
_SHIRTS: list[RGB] = [
    (40, 80, 200),
    (200, 40, 40),
    (40, 160, 70),
    (230, 200, 40),
    (140, 50, 170),
    (240, 130, 30),
    (30, 170, 180),
    (225, 225, 235),
]
_BACKGROUNDS: list[RGB] = [
    (170, 200, 230),
    (232, 220, 190),
    (190, 230, 190),
    (118, 118, 140),
    (240, 200, 210),
    (200, 200, 200),
    (150, 180, 160),
    (92, 112, 152),
]
_F0S = [110.0, 210.0, 130.0, 190.0, 95.0, 230.0, 150.0, 175.0]  # Hz, low and high voices


@dataclass(frozen=True)
class Identity:
    """One demo person: how they look and how they sound."""

    name: str
    skin: RGB
    hair: RGB
    shirt: RGB
    background: RGB
    face_width: float  # head ellipse width factor (~0.9-1.1)
    face_height: float  # head ellipse height factor
    hair_style: int  # 0 short cap, 1 long (sides), 2 high top
    f0: float  # mean voice pitch, Hz
    formant_scale: float  # vocal tract: >1 shifts formants up (shorter tract)

    def to_dict(self) -> dict:
        return asdict(self)


def make_identities(count: int, seed: int = 0) -> list[Identity]:
    """`count` identities: the first 8 use the hand-picked palette; later ones are procedural.

    Procedural people draw hair, shirt and background colours at random, skin between two
    palette tones, and random face proportions, hair style and voice. Many distinct faces keep a
    model from learning to pick one of eight people instead of copying its reference face.
    """
    rng = np.random.default_rng(seed)
    return [_hand_picked(i) if i < len(_SKINS) else _procedural(i, rng) for i in range(count)]


def _hand_picked(k: int) -> Identity:
    return Identity(
        name=f"id{k:02d}",
        skin=_SKINS[k],
        hair=_HAIRS[k],
        shirt=_SHIRTS[k],
        background=_BACKGROUNDS[k],
        face_width=float(0.9 + 0.2 * ((k * 5) % 8) / 7),
        face_height=float(0.94 + 0.12 * ((k * 3) % 8) / 7),
        hair_style=k % 3,
        f0=_F0S[k],
        formant_scale=1.15 if _F0S[k] > 160 else 1.0,
    )


def _procedural(i: int, rng: np.random.Generator) -> Identity:
    def colour() -> RGB:
        return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]

    a, b = rng.choice(len(_SKINS), 2, replace=False)
    mix = rng.uniform(0, 1)
    skin = np.array(_SKINS[a]) * mix + np.array(_SKINS[b]) * (1 - mix) + rng.integers(-15, 16, 3)
    f0 = float(rng.uniform(90.0, 240.0))
    return Identity(
        name=f"id{i:02d}",
        skin=tuple(int(v) for v in np.clip(skin, 0, 255)),  # type: ignore[arg-type]
        hair=colour(),
        shirt=colour(),
        background=colour(),
        face_width=float(rng.uniform(0.88, 1.12)),
        face_height=float(rng.uniform(0.92, 1.08)),
        hair_style=int(rng.integers(0, 3)),
        f0=f0,
        formant_scale=1.15 if f0 > 160 else 1.0,
    )
