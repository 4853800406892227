"""Demo identities: distinct face shape, colours and voice per person."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RGB = tuple[int, int, int]

# Hand-picked so that any two identities differ in several colours at 32x32 px.
_SKINS: list[RGB] = [
    (236, 200, 170), (205, 150, 110), (160, 110, 75), (122, 84, 58),
    (245, 215, 190), (190, 135, 95), (225, 180, 140), (142, 97, 66),
]  # fmt: skip
_HAIRS: list[RGB] = [
    (40, 30, 20), (125, 70, 30), (205, 175, 90), (20, 20, 25),
    (160, 45, 30), (95, 95, 100), (65, 42, 30), (235, 235, 225),
]  # fmt: skip
_SHIRTS: list[RGB] = [
    (40, 80, 200), (200, 40, 40), (40, 160, 70), (230, 200, 40),
    (140, 50, 170), (240, 130, 30), (30, 170, 180), (225, 225, 235),
]  # fmt: skip
_BACKGROUNDS: list[RGB] = [
    (170, 200, 230), (232, 220, 190), (190, 230, 190), (118, 118, 140),
    (240, 200, 210), (200, 200, 200), (150, 180, 160), (92, 112, 152),
]  # fmt: skip
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
    """`count` identities; the first 8 use the hand-picked palette, later ones are jittered."""
    rng = np.random.default_rng(seed)
    people = []
    for i in range(count):
        k = i % len(_SKINS)
        lap = i // len(_SKINS)  # 0 for the first 8; later laps shift palettes and add jitter
        jitter = 1 if lap else 0

        def pick(palette: list[RGB], offset: int, k: int = k, lap: int = lap) -> RGB:
            base = np.array(palette[(k + offset * lap) % len(palette)])
            noise = rng.integers(-25, 26, 3) * (1 if lap else 0)
            return tuple(int(v) for v in np.clip(base + noise, 0, 255))  # type: ignore[return-value]

        f0 = _F0S[k] * (1.0 + 0.08 * jitter * rng.uniform(-1, 1))
        people.append(
            Identity(
                name=f"id{i:02d}",
                skin=pick(_SKINS, 0),
                hair=pick(_HAIRS, 3),
                shirt=pick(_SHIRTS, 5),
                background=pick(_BACKGROUNDS, 2),
                face_width=float(0.9 + 0.2 * ((k * 5) % 8) / 7),
                face_height=float(0.94 + 0.12 * ((k * 3) % 8) / 7),
                hair_style=k % 3,
                f0=float(f0),
                formant_scale=1.15 if f0 > 160 else 1.0,
            )
        )
    return people
