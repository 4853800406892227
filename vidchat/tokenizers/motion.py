"""Motion tokenizer: N identity-free codes per frame, rendered back with a reference image.

frames `[B,T,H,W,3]` uint8 -> codes `[B,T,1,N]` long; codes + reference `[B,H,W,3]` -> frames.

Why: an appearance code (`video_vq`) makes "the partner smiles, so I smile" a map between two
faces' codes, which an LM learns only by memorising pairs. Dyadic head systems (LIA, FOMM,
LivePortrait, INFP, L2L) instead code the *motion* of a face in a few numbers and render it on a
reference image; the partner's motion and the responder's then share one space. N does not
depend on the frame size: only the renderer grows with it.

Architecture only (training: `vidchat.training.tokenizers.motion`), three parts:
- **motion encoder**: conv stages on the driving frame's standardised luma (`driver_input`),
  pooled to a fixed 4x4 grid (`POOL`, whatever the frame size), projected to N groups of
  `len(fsq_levels)` channels and quantised by FSQ (`vector-quantize-pytorch`), one code per
  group. The pool and the narrow bottleneck leave little room for identity (the argument of BCD
  and INFP), and without colour or brightness a face's palette has no way through; an identity
  probe on the codes (`bench/reenact.py`) measures what passes. A global pool gave every frame
  the same code: the mouth's few pixels vanished in the average.
- **appearance encoder**: conv stages on the reference -> features `[C,h,w]`, h = H / 2**stages.
- **renderer** (a decoder conditioned on the reference's features, chosen over flow warping
  for its simplicity at 64 px): the codes -> a motion map `[Cm,h,w]` (a learned projection:
  where the mouth and eyes are is spatial), concatenated with the appearance features, then
  mirrored conv stages up to the frame, each also reading the reference's features at its
  scale (`skips`), which draws the whole frame (or, with `residual`, a change added to the
  reference).
  The palette cannot pass through the luma driver's codes, so the whole-frame renderer keeps
  the reference's face; where the reference's own mouth is at hand, a residual renderer kept
  a faint copy of it and drew a third of a smile (docs/experiments.md, "Motion tokens").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from vidchat.errors import VidchatError
from vidchat.tokenizers.base import TokenizerSpec, VideoTokenizer
from vidchat.tokenizers.checkpoint import ConfigCheckpoint
from vidchat.tokenizers.quantizers import QuantizerOutput, build_quantizer
from vidchat.tokenizers.video_vq import ResBlock

POOL = 4
"""The motion encoder pools its features to POOL x POOL at any frame size: enough to say where
the mouth and eyes are, too coarse to carry a face's look."""
DRIVER_INPUTS = ("luma", "rgb")
LUMA = (0.299, 0.587, 0.114)  # BT.601, as `vidchat.perception.ssim.LUMA_WEIGHTS` (same layer)


def standardised_luma(images: torch.Tensor) -> torch.Tensor:
    """`[N,3,H,W]` -> `[N,1,H,W]`: each frame's luma with zero mean and unit variance, so what
    the motion encoder sees carries shapes, not a palette or a brightness."""
    weights = torch.tensor(LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    y = (images * weights).sum(dim=1, keepdim=True)
    mean = y.mean(dim=(2, 3), keepdim=True)
    return (y - mean) / (y.std(dim=(2, 3), keepdim=True) + 1e-3)


@dataclass
class MotionConfig:
    """Hyper-parameters of the motion tokenizer (saved in the checkpoint JSON).

    frame_size: frames are frame_size x frame_size pixels (the renderer's size; N is not).
    fps: frame rate it is trained for (its `TokenizerSpec.frame_rate`).
    num_codes: N codes per frame, whatever the frame size.
    fsq_levels: FSQ levels of one code (its codebook is their product).
    channels: conv widths, highest resolution first, one stride-2 stage each; a frame uses the
        last `stages` of them, so one list serves every size: [8, 16, 32, 64, 128] is
        [32, 64, 128] at 64 px and all five at 256 px. The stages a larger frame adds are the
        narrow ones, so the renderer's cost grows slowly with the frame (`bench/generate.py`,
        `rtf motion 256px`).
    latent_side: the side of the grid the encoders end on and the renderer starts from, at any
        frame size (frame_size = latent_side * 2**stages).
    motion_channels: channels of the motion map the renderer reads beside the appearance.
    driver_input: what the motion encoder sees of the driving frame: "luma" (its luma,
        standardised per frame: no colour, no brightness, so a face's palette cannot pass
        through the codes) or "rgb".
    residual: the renderer draws the reference plus a change (True) rather than a whole frame
        (False). Measured at 64 px on held-out demo faces, both with skips and the luma driver
        (`bench/reenact.py`): the whole frame renders A's smile or frown on B's face at 0.97
        emotion agreement against 0.36, 27.9 dB against 28.3; the residual renderer keeps a
        faint copy of the reference's mouth under the one the codes ask for.
    skips: the renderer also reads the reference's features at every scale it draws at (a
        U-Net's skips), not only on the latent grid: where the reference's mouth and eyes are,
        to the pixel, so that a change of a few pixels lands in place. Measured at 64 px on the
        demo faces: 28.5 dB against 26.9 A-on-B on new faces, 36 dB against 30 on held-out
        clips of the training faces (docs/experiments.md, "Motion tokens"); at 256 px they
        cost most (`bench/motion_rtf.py`).
    """

    frame_size: int = 64
    fps: float = 8.0
    num_codes: int = 4
    fsq_levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])
    channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 128])
    latent_side: int = 8
    motion_channels: int = 32
    hidden: int = 256
    driver_input: str = "luma"
    residual: bool = False
    skips: bool = True

    def __post_init__(self) -> None:
        if self.driver_input not in DRIVER_INPUTS:
            raise ValueError(
                f"driver_input must be one of {list(DRIVER_INPUTS)}, got {self.driver_input!r}"
            )
        if self.num_codes < 1:
            raise ValueError(f"num_codes must be >= 1, got {self.num_codes}")
        ratio = self.frame_size // max(1, self.latent_side)
        whole = self.frame_size % max(1, self.latent_side) == 0
        if not (whole and ratio >= 2 and ratio & (ratio - 1) == 0) or self.stages > len(
            self.channels
        ):
            raise ValueError(
                f"frame_size={self.frame_size} must be latent_side={self.latent_side} times a "
                f"power of two, at most 2**{len(self.channels)} (one stage per channel entry)"
            )

    @property
    def stages(self) -> int:
        """Stride-2 stages between the frame and the latent grid."""
        return (self.frame_size // max(1, self.latent_side)).bit_length() - 1

    @property
    def stage_channels(self) -> list[int]:
        """The widths this frame size uses: the last `stages` entries of `channels`."""
        return list(self.channels[-self.stages :])


def _down(channels: list[int], in_channels: int = 3) -> nn.Sequential:
    """`[N,in_channels,H,W]` -> `[N,channels[-1],H/2**S,W/2**S]`."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], 3, padding=1)]
    prev = channels[0]
    for ch in channels:
        layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), ResBlock(ch)]
        prev = ch
    return nn.Sequential(*layers)


def _up(channels: list[int], in_dim: int) -> nn.Sequential:
    """`[N,in_dim,h,w]` -> `[N,3,h*2**S,w*2**S]` in about [-1, 1]."""
    chans = list(reversed(channels))
    layers: list[nn.Module] = [nn.Conv2d(in_dim, chans[0], 3, padding=1)]
    prev = chans[0]
    for ch in chans:
        layers += [ResBlock(prev), nn.Upsample(scale_factor=2, mode="nearest")]
        layers += [nn.Conv2d(prev, ch, 3, padding=1)]
        prev = ch
    layers += [nn.GroupNorm(8, prev), nn.SiLU(), nn.Conv2d(prev, 3, 3, padding=1)]
    return nn.Sequential(*layers)


def _features(down: nn.Sequential, images: torch.Tensor) -> list[torch.Tensor]:
    """`_down`'s output at every scale, finest first: `[N,channels[0],H,W]`, then one per stage
    `[N,channels[j],H/2**(j+1),W/2**(j+1)]`; the last is `down(images)`."""
    x, scales = down[0](images), []
    scales.append(x)
    for j in range(1, len(down), 2):  # (stride-2 conv, ResBlock) per stage
        x = down[j + 1](down[j](x))
        scales.append(x)
    return scales


def _skip_projections(channels: list[int]) -> nn.ModuleList:
    """For each of `_up`'s stages, a 3x3 conv from the reference's features at the scale that
    stage ends on to that stage's width (`_draw`)."""
    chans = list(reversed(channels))
    sources = list(reversed(channels[:-1])) + [channels[0]]  # stage k ends on down scale S-1-k
    return nn.ModuleList(nn.Conv2d(c, ch, 3, padding=1) for c, ch in zip(sources, chans))


@dataclass
class ReferenceView:
    """What the renderer reads of a reference, computed once per reference (`appearance`):
    - `latent`: the appearance features on the latent grid, `[N,C,h,w]`;
    - `skips`: per renderer stage, the reference's features at the scale that stage ends on,
      already projected to its width (`[N,ch_k,H_k,W_k]`; empty without `skips`). A projection
      reads only the reference, so it is computed once rather than once per frame: at 256 px
      these full-resolution convolutions were about a fifth of a frame's rendering;
    - `image`: the reference itself, `[N,3,H,W]` (read only by a `residual` renderer).
    A view with N = 1 serves any number of frames: the renderer broadcasts it."""

    latent: torch.Tensor
    skips: list[torch.Tensor]
    image: torch.Tensor

    @property
    def memory_format(self) -> torch.memory_format:
        """The activations' layout while rendering from this view: channels-last when the
        reference came in channels-last (decoding, `MotionTokenizer.decode`), else PyTorch's
        default."""
        nhwc = self.image.is_contiguous(memory_format=torch.channels_last)
        return torch.channels_last if nhwc else torch.contiguous_format

    def repeat_interleave(self, repeats: int) -> ReferenceView:
        """Each row `repeats` times in a row (one row per frame of that reference's clip)."""
        return ReferenceView(
            self.latent.repeat_interleave(repeats, dim=0),
            [s.repeat_interleave(repeats, dim=0) for s in self.skips],
            self.image.repeat_interleave(repeats, dim=0),
        )


def _draw(up: nn.Sequential, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
    """`_up` on `x`, adding after each stage its projected reference features (`skips`, one per
    stage, from `ReferenceView`; none: plain `_up`)."""
    if not skips:
        return up(x)
    x = up[0](x)
    for k, skip in enumerate(skips):  # (ResBlock, Upsample, conv) per stage
        x = up[3 * k + 3](up[3 * k + 2](up[3 * k + 1](x)))
        x = x + skip
    for layer in up[3 * len(skips) + 1 :]:
        x = layer(x)
    return x


class MotionTokenizer(ConfigCheckpoint, VideoTokenizer):
    """Frames -> N motion codes each; codes + a reference image -> frames (module docstring)."""

    config_class = MotionConfig
    checkpoint_name = "motion tokenizer"
    # checkpoints from before these values: the RGB whole-frame renderer, without skips
    legacy_config = {"driver_input": "rgb", "residual": False, "skips": False}
    needs_reference = True
    spatial_codes = False  # N codes for the whole face: no code is a place in the frame

    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = len(cfg.fsq_levels)
        side = cfg.latent_side
        self.motion_encoder = nn.Sequential(
            _down(cfg.stage_channels, 1 if cfg.driver_input == "luma" else 3),
            nn.AdaptiveAvgPool2d(POOL),  # a fixed grid whatever the frame size: where is kept
            nn.Flatten(),
            nn.Linear(cfg.stage_channels[-1] * POOL * POOL, cfg.hidden),
            nn.LayerNorm(cfg.hidden),  # keeps the latent in FSQ's unsaturated range
            nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.num_codes * dim),
        )
        self.quantizer = build_quantizer("fsq", 0, dim, levels=cfg.fsq_levels)
        self.appearance_encoder = _down(cfg.stage_channels)
        self.motion_map = nn.Sequential(
            nn.Linear(cfg.num_codes * dim, cfg.hidden),
            nn.SiLU(),
            nn.Linear(cfg.hidden, cfg.motion_channels * side * side),
        )
        widths = cfg.stage_channels
        self.renderer = _up(widths, widths[-1] + cfg.motion_channels)
        self.skips = _skip_projections(widths) if cfg.skips else None
        if cfg.residual:  # starts as the reference itself: training learns only what moves
            nn.init.zeros_(self.renderer[-1].weight)
            nn.init.zeros_(self.renderer[-1].bias)
        self._last_view: tuple[tuple, torch.Tensor, ReferenceView] | None = None  # decode's
        self.spec = TokenizerSpec(
            modality="video",
            frame_rate=float(cfg.fps),
            num_codebooks=1,
            codebook_size=int(self.quantizer.codebook_size),
            grid=(1, cfg.num_codes),
            frame_size=(cfg.frame_size, cfg.frame_size),
        )

    # --- continuous path (training) -------------------------------------------------------
    def driver_view(self, images: torch.Tensor) -> torch.Tensor:
        """Driving images `[N,3,H,W]` in [-1,1] -> what the motion encoder reads (`driver_input`)."""
        return standardised_luma(images) if self.cfg.driver_input == "luma" else images

    def quantize_motion(self, images: torch.Tensor) -> QuantizerOutput:
        """Driving images `[N,3,H,W]` in [-1,1] -> quantised motion `[N*num_codes, D]` with codes
        `[N, num_codes]`."""
        z = self.motion_encoder(self.driver_view(images))  # [N, num_codes*D]
        n = z.shape[0]
        q = self.quantizer(rearrange(z, "n (c d) -> (n c) d", c=self.cfg.num_codes))
        q.codes = q.codes.view(n, self.cfg.num_codes)
        return q

    def appearance(self, reference: torch.Tensor) -> ReferenceView:
        """Reference images `[N,3,H,W]` in [-1,1] -> the renderer's view of them
        (`ReferenceView`). Decoding computes it once per reference, not once per frame."""
        scales = _features(self.appearance_encoder, reference)  # finest first
        skips = []
        if self.skips is not None:
            stages = len(self.skips)  # stage k ends on the scale of `scales[stages - 1 - k]`
            skips = [proj(scales[stages - 1 - k]) for k, proj in enumerate(self.skips)]
        return ReferenceView(scales[-1], skips, reference)

    def render(self, motion: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Quantised motion `[N*num_codes, D]` and reference images `[N,3,H,W]` in [-1,1] ->
        images `[N,3,H,W]` in about [-1,1]."""
        return self.render_on(motion, self.appearance(reference))

    def render_on(self, motion: torch.Tensor, view: ReferenceView) -> torch.Tensor:
        """`render` from a reference's `view`: one row per motion row, or one row for all."""
        side = self.cfg.latent_side
        m = rearrange(motion, "(n c) d -> n (c d)", c=self.cfg.num_codes)
        motion_map = self.motion_map(m).view(m.shape[0], -1, side, side)
        latent = view.latent.expand(m.shape[0], -1, -1, -1)
        x = torch.cat([latent, motion_map], dim=1).contiguous(memory_format=view.memory_format)
        drawn = _draw(self.renderer, x, view.skips)
        return view.image + drawn if self.cfg.residual else drawn

    def forward(
        self, driving: torch.Tensor, reference: torch.Tensor
    ) -> tuple[torch.Tensor, QuantizerOutput]:
        """Driving and reference images `[N,3,H,W]` in [-1,1] (the same person) -> (the driving
        frame rendered from its codes on the reference, quantiser output)."""
        q = self.quantize_motion(driving)
        return self.render(q.quantized, reference), q

    # --- discrete interface ----------------------------------------------------------------
    def _images(self, frames: torch.Tensor, what: str) -> torch.Tensor:
        """uint8 `[...,H,W,3]` -> `[N,3,H,W]` float in [-1,1] on this tokenizer's device."""
        size = self.cfg.frame_size
        if frames.ndim < 3 or frames.shape[-1] != 3 or tuple(frames.shape[-3:-1]) != (size, size):
            raise VidchatError(
                f"motion tokenizer expects {what} [...,{size},{size},3] uint8, got "
                f"{tuple(frames.shape)}; resample to {size}x{size} first"
            )
        device = next(self.parameters()).device
        x = frames.reshape(-1, *frames.shape[-3:]).to(device).float()
        return rearrange(x, "n h w c -> n c h w") / 127.5 - 1.0

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """frames `[B,T,H,W,3]` uint8 -> codes `[B,T,1,N]` long."""
        if frames.ndim != 5:
            raise VidchatError(f"motion tokenizer expects frames [B,T,H,W,3], got {frames.shape}")
        b, t = frames.shape[:2]
        codes = self.quantize_motion(self._images(frames, "frames")).codes
        return codes.view(b, t, 1, self.cfg.num_codes)

    def _view_of(self, ref: torch.Tensor) -> ReferenceView:
        """`appearance(ref)`, kept for the next decode on the same reference with the same
        weights. Why: a stream decodes each 0.5 s chunk of a turn on one reference, and at
        256 px the view costs about 17 ms a chunk, paid again for nothing. The key holds the
        reference's pixels and, for every weight, its storage and in-place version counter,
        so an optimiser step, `load_state_dict`, `.to()` or `.half()` makes it stale, as does a
        change of autocast."""
        weights = tuple((p.data_ptr(), p._version) for p in self.parameters())
        key = (weights, torch.is_autocast_enabled(ref.device.type), ref.shape, ref.device)
        cached = self._last_view
        if cached is not None and cached[0] == key and torch.equal(cached[1], ref):
            return cached[2]
        view = self.appearance(ref)
        self._last_view = (key, ref.clone(), view)
        return view

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """codes `[B,T,1,N]` and the reference `[B,H,W,3]` (or `[H,W,3]` for every row) uint8
        -> frames `[B,T,H,W,3]` uint8, the reference's face moving as the codes say.

        Decoding renders channels-last (NHWC): oneDNN's convolutions at these narrow widths ran
        2.1x faster at 256 px and 1.6x at 64 px on one CPU thread, for the same frames to
        float rounding. Training keeps PyTorch's default layout."""
        if reference is None:
            raise VidchatError(
                "a motion tokenizer renders its codes on a reference image: pass reference="
            )
        b, t = codes.shape[:2]
        ref = self._images(reference, "reference")  # [B or 1,3,H,W]
        ref = ref.contiguous(memory_format=torch.channels_last)
        if ref.shape[0] not in (1, b):
            raise VidchatError(
                f"motion tokenizer: {ref.shape[0]} references for {b} rows of codes (give one, or one per row)"
            )
        view = self._view_of(ref)  # once per reference; one row serves every frame
        if ref.shape[0] > 1:
            view = view.repeat_interleave(t)  # [B*T,...] each
        motion = self.quantizer.decode(codes.to(ref.device).long().flatten())  # [(B T N), D]
        x = self.render_on(motion.float(), view)
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return rearrange(x, "(b t) c h w -> b t h w c", b=b)
