"""Seeded synthetic head-CT stacks in Hounsfield units with exact hemorrhage masks.

Everything here is a simulation for testing and demonstration; it is not patient data and no figure
computed on it is a clinical result.

Coordinates
-----------
Patient coordinates are DICOM LPS in mm: +x towards the patient's left, +y posterior, +z superior.
Frame ``k`` lies at ``z = positions[k]``, ascending (frame 0 is the most inferior); pixel ``(row, col)``
is at ``x = origin[0] + col · pixel_spacing[1]``, ``y = origin[1] + row · pixel_spacing[0]`` (the
image shows the patient's anterior at the top, patient left on the right, as radiology displays).
Slices are 5 mm thick and 5 mm apart; 27–38 frames; ``size`` × ``size`` pixels covering a field of
view of 230–256 mm, i.e. 0.45–0.50 mm pixels at ``size`` 512 (a smaller ``size`` keeps the same
physical head with larger pixels).

Anatomy (per stack, all drawn from the seed)
--------------------------------------------
* Head: an ellipsoid, outer skull half-width 66–78 mm (left–right) and half-length 84–98 mm
  (anterior–posterior), slightly rotated and off-centre. Its axial cross-section is widest 35–45 %
  of the way up the stack and shrinks to 60–80 % at the bottom frame and 30–50 % at the top.
* Scalp 4–7 mm (skin/muscle 35–45 HU with a subcutaneous fat layer at −90 HU); air −1000 HU.
* Skull: inner surface 5–8 mm inside the outer one, thickness varying with angle (about 2–11 mm);
  dense tables ~1400 HU and diploë ~750 HU, so bone is within about +700…+1500 HU.
* Brain: white matter 24–30 HU, cortical grey ribbon 8–12 HU brighter (2.5–4 mm, folded), deep grey
  nuclei in the mid frames, a smooth ±1.5 HU texture; a 0.8–3 mm CSF layer under the skull; sulci,
  the interhemispheric fissure (deeper toward the vertex), Sylvian fissures and the suprasellar
  cistern as CSF clefts; lateral, third and fourth ventricles. CSF 3–8 HU.
* Noise: white Gaussian (inverse-CDF of 16-bit uniform draws, so tails stop at ±4.3 σ), standard
  deviation 5–10 HU, everywhere; finally clipped to
  [−1024, 3071] HU (the range a 12-bit unsigned store with intercept −1024 holds).

Hemorrhages (``HEMORRHAGE_TYPES``)
----------------------------------
A positive stack holds 1–6 lesions (most often 1–2); each has one density, acute 55–85 HU or, for
about one in five, faint 42–48 HU, plus a ±1 HU texture. ``lesion_contrast="acute"`` or ``"faint"``
makes every lesion of the stack that kind while consuming the same random draws, so the two versions
of a seed differ only in the lesions' density (same head, noise, lesion shapes and mask): a paired
comparison of contrast. Shapes, in mm and frames:

* ``epidural``: a biconvex lens against the inner skull: the voxels with depth below the inner
  skull ``d ≥ 0`` and ``(d/T)² + (Δθ/hθ)² + (Δz/hz)² ≤ 1`` (T 2.5–30 mm thick, 4–20 mm half height),
  mostly temporo-parietal.
* ``subdural``: a crescent along the inner skull, ``0 ≤ d ≤ T·(1 − |Δθ/hθ|³)·√(1 − (Δz/hz)²)``
  (T 1.5–20 mm, 35–85° half span, 10–45 mm half height).
* ``subarachnoid``: blood filling CSF clefts in a region: convexity sulci in an angular sector,
  the interhemispheric fissure, or the basal (suprasellar) cistern with the Sylvian fissures.
* ``intraparenchymal``: a lumpy ellipsoid (equivalent radius 1.5–32 mm) in the basal ganglia,
  a lobe or the posterior fossa, often with a hypodense oedema rim (which is not in the mask).
* ``intraventricular``: the dependent (posterior) part of the ventricles, or a full ventricular cast.

The mask is exact: it is the set of voxels whose value was set to the lesion's blood density
(``labels`` gives the type of the lesion that owns each voxel, 0 for none). Lesions displace
nothing (no mass effect) and edges are sharp (no partial-volume blur), so before noise every mask
voxel holds 41–86 HU. A negative stack has an empty mask. The anatomy, the lesions and the noise
come from independent streams of the seed, so ``generate_stack(s, negative=True)`` is the same head
with the same noise as ``generate_stack(s, negative=False)``, without its lesions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import ndimage
from scipy.special import ndtri

HEMORRHAGE_TYPES: tuple[str, ...] = (
    "epidural",
    "subdural",
    "subarachnoid",
    "intraparenchymal",
    "intraventricular",
)
SLICE_SPACING_MM = 5.0
AIR_HU = -1000.0
HU_RANGE: tuple[float, float] = (-1024.0, 3071.0)
FRAMES_RANGE: tuple[int, int] = (27, 38)
FOV_RANGE_MM: tuple[float, float] = (230.4, 256.0)

_TYPE_WEIGHTS = np.array([0.12, 0.26, 0.24, 0.24, 0.14])
_COUNT_WEIGHTS = np.array([0.42, 0.27, 0.15, 0.09, 0.05, 0.02])
_F32 = np.float32
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class Lesion:
    """One hemorrhage as painted: ``frames`` and ``voxels`` count only voxels it owns in the mask."""

    type: str
    frames: tuple[int, ...]
    voxels: int
    volume_ml: float
    hu: float
    faint: bool
    center_mm: tuple[float, float, float]
    size_mm: float

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the fields."""
        return {
            "type": self.type,
            "frames": list(self.frames),
            "voxels": self.voxels,
            "volume_ml": self.volume_ml,
            "hu": self.hu,
            "faint": self.faint,
            "center_mm": list(self.center_mm),
            "size_mm": self.size_mm,
        }


@dataclass
class PhantomStack:
    """A synthetic head-CT stack (see the module docstring for every definition)."""

    hu: np.ndarray  # float32 [F, H, W]
    mask: np.ndarray  # bool [F, H, W]
    labels: np.ndarray  # uint8 [F, H, W]: 0 none, i + 1 for HEMORRHAGE_TYPES[i]
    pixel_spacing: tuple[float, float]  # (row, col) mm
    slice_thickness: float
    slice_spacing: float
    positions: np.ndarray  # float64 [F], z in mm, ascending
    origin: tuple[float, float]  # (x, y) mm of the centre of pixel (0, 0)
    lesions: list[Lesion]
    seed: int
    negative: bool
    noise_sd: float

    @property
    def frames(self) -> int:
        return int(self.hu.shape[0])

    @property
    def types(self) -> set[str]:
        return {lesion.type for lesion in self.lesions}


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _angle_from(theta: np.ndarray, centre: float) -> np.ndarray:
    """``theta − centre`` wrapped into [−π, π) (``theta`` in [−π, π])."""
    centre = (centre + math.pi) % _TWO_PI - math.pi
    d = theta - _F32(centre)
    d = np.where(d >= math.pi, d - _F32(_TWO_PI), d)
    return np.where(d < -math.pi, d + _F32(_TWO_PI), d)


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field of unit standard deviation (size × size) from a cells × cells grid."""
    coarse = rng.standard_normal((cells, cells))
    middle = max(cells, min(size, 128))
    fine = ndimage.zoom(coarse, middle / cells, order=3, mode="reflect")
    if middle != size:
        fine = ndimage.zoom(fine, size / fine.shape[0], order=1, mode="nearest")
    fine = fine[:size, :size]
    fine = (fine - fine.mean()) / (fine.std() + 1e-9)
    return fine.astype(_F32)


@dataclass
class _Head:
    """Per-stack anatomy: scalars and 2-D maps shared by every frame (head-local u lateral, v posterior)."""

    size: int
    frames: int
    spacing: float
    origin: tuple[float, float]
    positions: np.ndarray
    center_px: tuple[float, float]
    outer: tuple[float, float]
    inner: tuple[float, float]
    rho_out: np.ndarray
    rho_in: np.ndarray
    rel_height: np.ndarray  # 0 at the bottom frame, 1 at the top
    scalp_mm: float
    csf_gap: float
    wm_hu: float
    gm_hu: float
    csf_hu: float
    scalp_hu: float
    noise_sd: float
    sulcus_half_width: float
    n_sulci: int
    gyral_phase: float
    ventricle: dict[str, float]
    u: np.ndarray
    v: np.ndarray
    r: np.ndarray
    theta: np.ndarray
    qo: np.ndarray
    lo: np.ndarray
    qi: np.ndarray
    li: np.ndarray
    sulcal_phase: np.ndarray
    sulcal_depth: np.ndarray
    gyri_sin: np.ndarray
    gyri_cos: np.ndarray
    texture_a: np.ndarray
    texture_b: np.ndarray
    angle: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    bbox: list[tuple[slice, slice]] = field(default_factory=list)

    def inner_radius(self, theta: float, k: int) -> float:
        """Distance (mm) from the head centre to the inner skull along head-local angle ``theta``."""
        ai, bi = self.inner
        scale = self.rho_in[k]
        return float(scale / math.sqrt((math.cos(theta) / ai) ** 2 + (math.sin(theta) / bi) ** 2))

    def to_patient(self, u: float, v: float, k: int) -> tuple[float, float, float]:
        """Head-local (u, v) mm in frame k → patient (x, y, z) mm."""
        cos_a, sin_a = math.cos(self.angle), math.sin(self.angle)
        return (
            self.shift[0] + cos_a * u - sin_a * v,
            self.shift[1] + sin_a * u + cos_a * v,
            float(self.positions[k]),
        )


def _sample_head(rng: np.random.Generator, size: int, frames: int | None) -> _Head:
    if frames is None:
        frames = int(rng.integers(FRAMES_RANGE[0], FRAMES_RANGE[1] + 1))
    fov = float(rng.uniform(*FOV_RANGE_MM))
    spacing = fov / size
    half_a = float(rng.uniform(66.0, 78.0))
    half_b = float(rng.uniform(84.0, 98.0))
    thickness = float(rng.uniform(5.0, 8.0))
    angle = float(rng.normal(0.0, 0.06))
    shift = rng.normal(0.0, 4.0, size=2)
    z_base = float(rng.uniform(-90.0, -50.0))
    positions = z_base + SLICE_SPACING_MM * np.arange(frames, dtype=np.float64)
    span = max(SLICE_SPACING_MM * (frames - 1), 1.0)
    t_center = float(rng.uniform(0.35, 0.45))
    rho_top = float(rng.uniform(0.3, 0.5))
    rho_bottom = float(rng.uniform(0.6, 0.8))
    c_high = (1.0 - t_center) * span / math.sqrt(1.0 - rho_top**2)
    c_low = t_center * span / math.sqrt(1.0 - rho_bottom**2)
    rel = np.arange(frames, dtype=np.float64) / max(frames - 1, 1)
    z_rel = (rel - t_center) * span
    c_out = np.where(z_rel < 0, c_low, c_high)
    rho_out = np.sqrt(np.clip(1.0 - (z_rel / c_out) ** 2, 0.0, None))
    rho_in = np.sqrt(np.clip(1.0 - (z_rel / (c_out - thickness)) ** 2, 0.0, None))

    origin = (-fov / 2.0 + spacing / 2.0, -fov / 2.0 + spacing / 2.0)
    rows = origin[1] + spacing * np.arange(size, dtype=np.float64)
    cols = origin[0] + spacing * np.arange(size, dtype=np.float64)
    dx = cols[None, :] - shift[0]
    dy = rows[:, None] - shift[1]
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    u = (cos_a * dx + sin_a * dy).astype(_F32)
    v = (-sin_a * dx + cos_a * dy).astype(_F32)
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    ai, bi = half_a - thickness, half_b - thickness
    qo = np.sqrt((u / _F32(half_a)) ** 2 + (v / _F32(half_b)) ** 2)
    q_raw = np.sqrt((u / _F32(ai)) ** 2 + (v / _F32(bi)) ** 2)
    phases = rng.uniform(0.0, _TWO_PI, size=8)
    eps = (
        _F32(rng.uniform(0.01, 0.03)) * np.cos(theta - _F32(phases[0]))
        + _F32(rng.uniform(0.005, 0.02)) * np.cos(2 * theta - _F32(phases[1]))
        + _F32(0.008) * np.cos(5 * theta - _F32(phases[2]))
    )
    qi = q_raw * (1.0 + eps)
    tiny = _F32(1e-6)
    lo = (r / np.maximum(qo, tiny)).astype(_F32)
    li = (r / np.maximum(qi, tiny)).astype(_F32)
    lo[qo < tiny] = half_a
    li[qi < tiny] = ai

    n_sulci = int(rng.integers(30, 44))
    jitter = (
        _F32(0.05) * np.sin(3 * theta + _F32(phases[3]))
        + _F32(0.03) * np.sin(7 * theta + _F32(phases[4]))
        + _F32(0.045) * np.sin(r / _F32(4.5) + _F32(phases[7]))
    )
    sulcal_phase = (_F32(n_sulci / _TWO_PI) * (theta + jitter)).astype(_F32)
    index = np.round(sulcal_phase)
    depth_scale = _F32(rng.uniform(6.0, 12.0))
    sulcal_depth = (depth_scale * (0.55 + 0.45 * np.cos(index * _F32(2.3) + _F32(phases[5])))).astype(_F32)
    n_gyri = int(rng.integers(16, 28))
    atrophy = float(rng.uniform(0.0, 1.0))
    wm_hu = float(rng.uniform(24.0, 30.0))
    head = _Head(
        size=size,
        frames=frames,
        spacing=spacing,
        origin=origin,
        positions=positions,
        center_px=(float((shift[1] - origin[1]) / spacing), float((shift[0] - origin[0]) / spacing)),
        outer=(half_a, half_b),
        inner=(ai, bi),
        rho_out=rho_out,
        rho_in=rho_in,
        rel_height=rel,
        scalp_mm=float(rng.uniform(4.0, 7.0)),
        csf_gap=0.8 + 2.2 * atrophy,
        wm_hu=wm_hu,
        gm_hu=wm_hu + float(rng.uniform(8.0, 12.0)),
        csf_hu=float(rng.uniform(3.0, 8.0)),
        scalp_hu=float(rng.uniform(35.0, 45.0)),
        noise_sd=float(rng.uniform(5.0, 10.0)),
        sulcus_half_width=max(0.6 + 0.5 * atrophy, 0.55 * spacing),
        n_sulci=n_sulci,
        gyral_phase=float(phases[6]),
        ventricle={
            "half_width": 3.0 + 5.0 * atrophy + float(rng.uniform(0.0, 1.5)),
            "half_length": float(rng.uniform(18.0, 28.0)),
            "separation": float(rng.uniform(1.5, 3.5)),
            "center_v": float(rng.uniform(-6.0, 2.0)),
            "tilt": float(rng.uniform(0.12, 0.3)),
            "level": float(rng.uniform(0.5, 0.58)),
            "extent": float(rng.uniform(0.12, 0.18)),
            "third_half_width": max(1.2 + 2.0 * atrophy, 0.55 * spacing),
        },
        u=u,
        v=v,
        r=r,
        theta=theta,
        qo=qo,
        lo=lo,
        qi=qi,
        li=li,
        sulcal_phase=sulcal_phase,
        sulcal_depth=sulcal_depth,
        gyri_sin=np.sin(n_gyri * theta).astype(_F32),
        gyri_cos=np.cos(n_gyri * theta).astype(_F32),
        texture_a=_smooth_field(rng, size, 28),
        texture_b=_smooth_field(rng, size, 28),
    )
    head.angle = angle
    head.shift = (float(shift[0]), float(shift[1]))
    centre_r, centre_c = head.center_px
    for k in range(frames):
        reach = (max(half_a, half_b) * rho_out[k] + head.scalp_mm + 2.0) / spacing
        r0, r1 = max(0, int(centre_r - reach)), min(size, math.ceil(centre_r + reach) + 1)
        c0, c1 = max(0, int(centre_c - reach)), min(size, math.ceil(centre_c + reach) + 1)
        head.bbox.append((slice(r0, r1), slice(c0, c1)))
    return head


class _Frame:
    """One frame's tissue maps, restricted to the head's bounding box ``box``."""

    def __init__(self, head: _Head, k: int) -> None:
        self.head = head
        self.k = k
        self.box = head.bbox[k]
        self.t = float(head.rel_height[k])
        box = self.box
        self.u = head.u[box]
        self.v = head.v[box]
        self.r = head.r[box]
        self.theta = head.theta[box]
        self.out_mm = (head.qo[box] - _F32(head.rho_out[k])) * head.lo[box]
        self.depth = (_F32(head.rho_in[k]) - head.qi[box]) * head.li[box]

    @cached_property
    def intracranial(self) -> np.ndarray:
        return self.depth >= 0

    @cached_property
    def cortex_depth(self) -> np.ndarray:
        return self.depth - _F32(self.head.csf_gap)

    @cached_property
    def sulci(self) -> np.ndarray:
        head = self.head
        phase = head.sulcal_phase[self.box] + _F32(0.02 * self.k)
        lateral = np.abs(phase - np.round(phase)) * _F32(_TWO_PI / head.n_sulci) * self.r
        cd = self.cortex_depth
        return (lateral < _F32(head.sulcus_half_width)) & (cd >= 0) & (cd < head.sulcal_depth[self.box])

    @cached_property
    def fissure(self) -> np.ndarray:
        depth = 12.0 + 75.0 * min(max((self.t - 0.55) / 0.3, 0.0), 1.0)
        cd = self.cortex_depth
        return (np.abs(self.u) < _F32(self.head.sulcus_half_width * 1.2)) & (cd >= 0) & (cd < _F32(depth))

    @cached_property
    def sylvian(self) -> np.ndarray:
        if not 0.28 <= self.t <= 0.5:
            return np.zeros(self.u.shape, dtype=bool)
        cd = self.cortex_depth
        width = _F32(self.head.sulcus_half_width * 1.5)
        out = np.zeros(self.u.shape, dtype=bool)
        for axis in (-0.15, math.pi + 0.15):
            off = np.abs(_angle_from(self.theta, axis)) * self.r
            out |= (off < width) & (cd >= 0) & (cd < _F32(25.0))
        return out

    @cached_property
    def cistern(self) -> np.ndarray:
        if not 0.22 <= self.t <= 0.33:
            return np.zeros(self.u.shape, dtype=bool)
        du, dv = self.u, self.v + _F32(6.0)
        rc = np.hypot(du, dv)
        star = rc < _F32(11.0) * (1.0 + _F32(0.3) * np.cos(5 * np.arctan2(dv, du) + _F32(math.pi / 2)))
        midbrain = np.hypot(self.u, self.v - _F32(10.0)) < _F32(8.5)
        return star & ~midbrain & (self.cortex_depth > 0)

    @cached_property
    def ventricles(self) -> np.ndarray:
        head, t = self.head, self.t
        vent = head.ventricle
        out = np.zeros(self.u.shape, dtype=bool)
        scale = 1.0 - ((t - vent["level"]) / vent["extent"]) ** 2
        if scale > 0:
            s = math.sqrt(scale)
            a, b = vent["half_width"] * s, vent["half_length"] * (0.4 + 0.6 * s)
            for side in (-1.0, 1.0):
                uc = side * (vent["separation"] + a)
                tilt = side * vent["tilt"]
                ct, st = math.cos(tilt), math.sin(tilt)
                du, dv = self.u - _F32(uc), self.v - _F32(vent["center_v"])
                along_u = ct * du + st * dv
                along_v = -st * du + ct * dv
                out |= (along_u / _F32(max(a, 0.5))) ** 2 + (along_v / _F32(b)) ** 2 < 1.0
        if 0.34 <= t <= 0.46:
            out |= (np.abs(self.u) < _F32(vent["third_half_width"])) & (np.abs(self.v - _F32(4.0)) < 11.0)
        if 0.08 <= t <= 0.22:
            out |= (self.u / _F32(6.5)) ** 2 + ((self.v - _F32(28.0)) / _F32(4.5)) ** 2 < 1.0
        return out & (self.cortex_depth > 1.0)

    @cached_property
    def csf(self) -> np.ndarray:
        """CSF inside the skull: the layer under the skull, clefts, cisterns and ventricles."""
        out = self.intracranial & (self.cortex_depth < 0)
        out |= self.sulci | self.fissure | self.sylvian | self.cistern | self.ventricles
        return out & self.intracranial

    @cached_property
    def brain(self) -> np.ndarray:
        return self.intracranial & ~self.csf

    def texture(self, scale: float) -> np.ndarray:
        phase = 0.35 * self.k
        return self.head.texture_a[self.box] * _F32(scale * math.cos(phase)) + self.head.texture_b[
            self.box
        ] * _F32(scale * math.sin(phase))

    def render(self) -> np.ndarray:
        head, k = self.head, self.k
        tex = self.texture(1.0)
        phase = head.gyral_phase + 0.4 * k
        folds = (
            _F32(0.5)
            + _F32(0.5 * math.cos(phase)) * head.gyri_sin[self.box]
            + _F32(0.5 * math.sin(phase)) * head.gyri_cos[self.box]
        )
        ribbon = _F32(2.5) + _F32(1.5) * folds
        grey = np.clip(ribbon - self.cortex_depth + _F32(0.5), 0.0, 1.0)
        brain = _F32(head.wm_hu) + _F32(head.gm_hu - head.wm_hu) * grey + _F32(1.5) * tex
        if 0.36 <= self.t <= 0.52:
            s = math.sqrt(max(1.0 - ((self.t - 0.44) / 0.09) ** 2, 0.0))
            if s > 0:
                for side in (-1.0, 1.0):
                    du = (self.u - _F32(side * 19.0)) / _F32(7.0 * s)
                    dv = (self.v - _F32(2.0)) / _F32(14.0 * s)
                    nuclei = du * du + dv * dv < 1.0
                    brain = np.where(nuclei, _F32(head.gm_hu - 2.0) + _F32(1.5) * tex, brain)
        inside = np.where(self.csf, _F32(head.csf_hu) + _F32(0.8) * tex, brain)
        table = np.minimum(-self.out_mm, -self.depth)
        bone = _F32(760.0) + _F32(640.0) * np.clip(1.0 - table / _F32(1.8), 0.0, 1.0) + _F32(40.0) * tex
        scalp_depth = self.out_mm / _F32(head.scalp_mm)
        fat = (scalp_depth > 0.3) & (scalp_depth < 0.65)
        soft = np.where(fat, _F32(-90.0), _F32(head.scalp_hu)) + _F32(2.0) * tex
        outside = np.where(self.out_mm <= 0, bone, np.where(scalp_depth <= 1.0, soft, _F32(AIR_HU)))
        return np.where(self.intracranial, inside, outside)


@dataclass
class _LesionSpec:
    type: str
    hu: float
    faint: bool
    frames: range
    center: tuple[float, float, int]  # head-local u, v (mm), frame
    size_mm: float
    params: dict[str, float]

    def mask(self, fr: _Frame) -> np.ndarray | None:
        if fr.k not in self.frames:
            return None
        p = self.params
        dz = (float(fr.head.positions[fr.k]) - float(fr.head.positions[self.center[2]])) / p.get("hz", 1.0)
        if self.type == "epidural":
            if abs(dz) >= 1.0:
                return None
            dtheta = _angle_from(fr.theta, p["theta"]) / _F32(p["h_theta"])
            d = fr.depth / _F32(p["thickness"])
            return fr.intracranial & (d * d + dtheta * dtheta + _F32(dz * dz) <= 1.0)
        if self.type == "subdural":
            if abs(dz) >= 1.0:
                return None
            dtheta = np.abs(_angle_from(fr.theta, p["theta"]) / _F32(p["h_theta"]))
            profile = _F32(p["thickness"] * math.sqrt(1.0 - dz * dz)) * np.clip(1.0 - dtheta**3, 0.0, None)
            return fr.intracranial & (fr.depth <= profile)
        if self.type == "subarachnoid":
            variant = p["variant"]
            if variant == 0:  # convexity sulci in a sector
                sector = np.abs(_angle_from(fr.theta, p["theta"])) <= _F32(p["h_theta"])
                surface = fr.intracranial & (fr.cortex_depth < 0) & (fr.depth < _F32(p["layer"]))
                return sector & (fr.sulci | surface)
            if variant == 1:  # interhemispheric fissure
                half = np.abs(fr.v - _F32(p["v"])) <= _F32(p["half_length"])
                return fr.fissure & half
            return fr.cistern | fr.sylvian  # basal
        if self.type == "intraparenchymal":
            q, ring = self._blob(fr, dz)
            if q is None:
                return None
            return fr.intracranial & (q <= ring)
        if self.type == "intraventricular":
            if p["cast"]:
                return fr.ventricles
            return fr.ventricles & (fr.v >= _F32(p["level"]))
        raise ValueError(self.type)

    def _blob(self, fr: _Frame, dz: float) -> tuple[np.ndarray | None, np.ndarray | float]:
        p = self.params
        if abs(dz) >= 1.0 + p.get("rim", 0.0):
            return None, 0.0
        du = fr.u - _F32(self.center[0])
        dv = fr.v - _F32(self.center[1])
        cr, sr = math.cos(p["rot"]), math.sin(p["rot"])
        a = (cr * du + sr * dv) / _F32(p["a"])
        b = (-sr * du + cr * dv) / _F32(p["b"])
        q = np.sqrt(a * a + b * b + _F32(dz * dz))
        angle = np.arctan2(b, a)
        ring = (
            _F32(1.0)
            + _F32(p["lump2"]) * np.cos(2 * angle + _F32(p["phase2"]))
            + _F32(p["lump3"]) * np.cos(3 * angle + _F32(p["phase3"]))
        )
        return q, ring

    def edema(self, fr: _Frame) -> np.ndarray | None:
        p = self.params
        if self.type != "intraparenchymal" or p.get("rim", 0.0) <= 0 or fr.k not in self.frames:
            return None
        dz = (float(fr.head.positions[fr.k]) - float(fr.head.positions[self.center[2]])) / p["hz"]
        q, ring = self._blob(fr, dz)
        if q is None:
            return None
        return fr.brain & (q <= ring * _F32(1.0 + p["rim"])) & (q > ring)


def _brain_frames(head: _Head, min_radius: float = 25.0) -> list[int]:
    ai = min(head.inner)
    return [k for k in range(head.frames) if head.rho_in[k] * ai >= min_radius]


def _frame_window(head: _Head, k: int, half_mm: float) -> range:
    half = int(half_mm // SLICE_SPACING_MM)
    return range(max(0, k - half), min(head.frames, k + half + 1))


LESION_CONTRASTS: tuple[str, ...] = ("drawn", "acute", "faint")


def _sample_lesion(rng: np.random.Generator, head: _Head, kind: str, contrast: str = "drawn") -> _LesionSpec:
    drawn_faint = bool(rng.random() < 0.2)
    faint = drawn_faint if contrast == "drawn" else contrast == "faint"
    # Exactly one uniform draw either way, so forcing the contrast leaves every later draw unchanged.
    hu = float(rng.uniform(42.0, 48.0) if faint else rng.uniform(55.0, 85.0))
    frames_ok = _brain_frames(head)
    if not frames_ok:
        frames_ok = [int(np.argmax(head.rho_in))]
    mid = [k for k in frames_ok if 0.3 <= head.rel_height[k] <= 0.85] or frames_ok
    pixel = head.spacing
    if kind in ("epidural", "subdural"):
        k = int(rng.choice(mid))
        side = 0.0 if rng.random() < 0.5 else math.pi
        if kind == "epidural":
            theta = side + float(rng.normal(0.0, 0.6))
            thickness = max(_log_uniform(rng, 2.5, 30.0), 1.5 * pixel)
            radius = head.inner_radius(theta, k)
            h_theta = max(float(rng.uniform(0.25, 0.6)), 1.6 * thickness / radius)
            hz = max(float(rng.uniform(4.0, 20.0)), min(thickness, 15.0))
        else:
            theta = side + float(rng.normal(0.0, 0.4))
            thickness = max(_log_uniform(rng, 1.5, 20.0), 1.2 * pixel)
            h_theta = float(rng.uniform(0.6, 1.5))
            hz = float(rng.uniform(10.0, 45.0))
        radius = head.inner_radius(theta, k)
        u, v = radius * math.cos(theta), radius * math.sin(theta)
        return _LesionSpec(
            kind,
            hu,
            faint,
            _frame_window(head, k, hz),
            (u, v, k),
            thickness,
            {"theta": theta, "h_theta": h_theta, "thickness": thickness, "hz": hz},
        )
    if kind == "subarachnoid":
        variant = int(rng.choice(3, p=[0.55, 0.25, 0.2]))
        if variant == 2:
            basal = [k for k in range(head.frames) if 0.22 <= head.rel_height[k] <= 0.5]
            k0 = int(rng.choice(basal)) if basal else int(rng.choice(mid))
            frames = _frame_window(head, k0, float(rng.uniform(0.0, 10.0)))
            return _LesionSpec(kind, hu, faint, frames, (0.0, -6.0, k0), 20.0, {"variant": 2})
        if variant == 1:
            upper = [k for k in frames_ok if head.rel_height[k] >= 0.45] or mid
            k0 = int(rng.choice(upper))
            frames = _frame_window(head, k0, float(rng.uniform(0.0, 15.0)))
            half_length = float(rng.uniform(10.0, 60.0))
            v0 = float(rng.uniform(-50.0, 50.0))
            return _LesionSpec(
                kind,
                hu,
                faint,
                frames,
                (0.0, v0, k0),
                half_length,
                {"variant": 1, "v": v0, "half_length": half_length},
            )
        k0 = int(rng.choice(mid))
        frames = _frame_window(head, k0, float(rng.uniform(0.0, 20.0)))
        theta = float(rng.uniform(-math.pi, math.pi))
        h_theta = float(rng.uniform(0.35, 1.5))
        radius = head.inner_radius(theta, k0)
        layer = float(head.csf_gap if rng.random() < 0.5 else 0.0)
        return _LesionSpec(
            kind,
            hu,
            faint,
            frames,
            (radius * math.cos(theta), radius * math.sin(theta), k0),
            h_theta * radius,
            {"variant": 0, "theta": theta, "h_theta": h_theta, "layer": layer},
        )
    if kind == "intraparenchymal":
        radius = max(_log_uniform(rng, 1.5, 32.0), 1.2 * pixel)
        site = rng.random()
        if site < 0.45:
            candidates = [k for k in frames_ok if 0.38 <= head.rel_height[k] <= 0.52] or mid
            k0 = int(rng.choice(candidates))
            u0 = float(rng.choice([-1.0, 1.0]) * rng.uniform(12.0, 25.0))
            v0 = float(rng.uniform(-10.0, 15.0))
        elif site < 0.85 or not any(head.rel_height[k] <= 0.25 for k in frames_ok):
            k0 = int(rng.choice(mid))
            theta = float(rng.uniform(-math.pi, math.pi))
            reach = head.inner_radius(theta, k0)
            depth = float(rng.uniform(min(radius, 0.5 * reach) * 0.8, max(0.6 * reach, radius)))
            dist = max(reach - depth, 0.0)
            u0, v0 = dist * math.cos(theta), dist * math.sin(theta)
        else:
            candidates = [k for k in frames_ok if head.rel_height[k] <= 0.25]
            k0 = int(rng.choice(candidates))
            u0 = float(rng.uniform(-25.0, 25.0))
            v0 = float(rng.uniform(15.0, 35.0))
        hz = radius * float(rng.uniform(0.7, 1.3))
        rim = float(rng.uniform(0.15, 0.5)) if rng.random() < 0.6 else 0.0
        frames = _frame_window(head, k0, hz * (1.0 + rim))
        params = {
            "a": radius * float(rng.uniform(0.75, 1.3)),
            "b": radius * float(rng.uniform(0.75, 1.3)),
            "hz": hz,
            "rot": float(rng.uniform(0.0, math.pi)),
            "lump2": float(rng.uniform(0.0, 0.15)),
            "lump3": float(rng.uniform(0.0, 0.1)),
            "phase2": float(rng.uniform(0.0, _TWO_PI)),
            "phase3": float(rng.uniform(0.0, _TWO_PI)),
            "rim": rim,
            "edema_drop": float(rng.uniform(6.0, 12.0)),
        }
        return _LesionSpec(kind, hu, faint, frames, (u0, v0, k0), radius, params)
    if kind == "intraventricular":
        vent = head.ventricle
        levels = [k for k in range(head.frames) if abs(head.rel_height[k] - vent["level"]) < vent["extent"]]
        if not levels:
            levels = [int(np.argmin(np.abs(head.rel_height - vent["level"])))]
        k0 = int(rng.choice(levels))
        cast = bool(rng.random() < 0.35)
        frames = _frame_window(head, k0, float(rng.uniform(0.0, 20.0)))
        level = vent["center_v"] + vent["half_length"] * float(rng.uniform(-0.2, 0.7))
        return _LesionSpec(
            kind,
            hu,
            faint,
            frames,
            (0.0, level, k0),
            vent["half_length"],
            {"cast": float(cast), "level": level},
        )
    raise ValueError(f"unknown hemorrhage type {kind!r}")


def _paint(
    head: _Head, hu: np.ndarray, owner: np.ndarray, specs: list[_LesionSpec], first_index: int
) -> None:
    for k in _painted_frames(specs):
        fr = _Frame(head, k)
        box = fr.box
        hu_box = hu[k][box]
        owner_box = owner[k][box]
        tex = fr.texture(1.0)
        for offset, spec in enumerate(specs):
            rim = spec.edema(fr)
            if rim is not None:
                rim &= owner_box == 0
                hu_box[rim] = _F32(head.wm_hu - spec.params["edema_drop"]) + tex[rim]
            region = spec.mask(fr)
            if region is None or not region.any():
                continue
            hu_box[region] = _F32(spec.hu) + tex[region]
            owner_box[region] = first_index + offset


_NORMAL_QUANTILES = ndtri((np.arange(65536) + 0.5) / 65536).astype(_F32)


def _gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    """Standard-normal noise × ``sd`` by inverse-CDF lookup of 16-bit uniform draws (tails at ±4.3 σ)."""
    count = int(np.prod(shape))
    draws = np.frombuffer(rng.bytes(2 * count), dtype="<u2")
    return (_NORMAL_QUANTILES * _F32(sd))[draws].reshape(shape)


def _painted_frames(specs: list[_LesionSpec]) -> list[int]:
    return sorted({k for spec in specs for k in spec.frames})


def _summarise(head: _Head, owner: np.ndarray, specs: list[_LesionSpec]) -> list[Lesion | None]:
    n = len(specs)
    voxels = np.zeros(n + 1, dtype=np.int64)
    frames: list[list[int]] = [[] for _ in range(n + 1)]
    for k in _painted_frames(specs):
        counts = np.bincount(owner[k].ravel(), minlength=n + 1)
        voxels += counts
        for i in np.flatnonzero(counts[1:]) + 1:
            frames[i].append(k)
    voxel_ml = head.spacing * head.spacing * SLICE_SPACING_MM / 1000.0
    out: list[Lesion | None] = []
    for i, spec in enumerate(specs, start=1):
        if voxels[i] == 0:
            out.append(None)
            continue
        u, v, k = spec.center
        out.append(
            Lesion(
                type=spec.type,
                frames=tuple(frames[i]),
                voxels=int(voxels[i]),
                volume_ml=float(voxels[i] * voxel_ml),
                hu=spec.hu,
                faint=spec.faint,
                center_mm=head.to_patient(u, v, k),
                size_mm=float(spec.size_mm),
            )
        )
    return out


def generate_stack(
    seed: int,
    *,
    negative: bool | None = None,
    size: int = 512,
    frames: int | None = None,
    negative_fraction: float = 0.3,
    lesion_contrast: str = "drawn",
) -> PhantomStack:
    """One synthetic head-CT stack, fully determined by ``seed`` (and the keyword arguments).

    ``negative`` None draws it from ``negative_fraction``; ``frames`` None draws 27–38.
    ``lesion_contrast`` "drawn" (default) keeps each lesion's drawn density; "acute" or "faint"
    forces every lesion to that kind without changing anything else (module docstring).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if frames is not None and frames < 1:
        raise ValueError(f"frames must be positive, got {frames}")
    if lesion_contrast not in LESION_CONTRASTS:
        raise ValueError(
            f"lesion_contrast must be one of {', '.join(LESION_CONTRASTS)}, got {lesion_contrast!r}"
        )
    anatomy_seq, lesion_seq, noise_seq, choice_seq = np.random.SeedSequence(int(seed)).spawn(4)
    if negative is None:
        negative = bool(np.random.default_rng(choice_seq).random() < negative_fraction)
    head = _sample_head(np.random.default_rng(anatomy_seq), size, frames)
    n = head.frames
    hu = np.full((n, size, size), AIR_HU, dtype=_F32)
    for k in range(n):
        fr = _Frame(head, k)
        hu[k][fr.box] = fr.render()
    owner = np.zeros((n, size, size), dtype=np.uint8)
    specs: list[_LesionSpec] = []
    summaries: list[Lesion | None] = []
    if not negative:
        rng = np.random.default_rng(lesion_seq)
        count = int(rng.choice(len(_COUNT_WEIGHTS), p=_COUNT_WEIGHTS)) + 1
        kinds = rng.choice(len(HEMORRHAGE_TYPES), size=count, p=_TYPE_WEIGHTS)
        specs = [_sample_lesion(rng, head, HEMORRHAGE_TYPES[int(i)], lesion_contrast) for i in kinds]
        _paint(head, hu, owner, specs, 1)
        summaries = _summarise(head, owner, specs)
        if all(s is None for s in summaries):
            # Every sampled lesion fell between voxels: add one deep haematoma that cannot.
            k0 = int(np.argmax(head.rho_in))
            radius = max(6.0, 3.0 * head.spacing)
            faint = lesion_contrast == "faint"
            fallback = _LesionSpec(
                "intraparenchymal",
                float(rng.uniform(42.0, 48.0) if faint else rng.uniform(55.0, 85.0)),
                faint,
                _frame_window(head, k0, radius),
                (20.0, 0.0, k0),
                radius,
                {
                    "a": radius,
                    "b": radius,
                    "hz": radius,
                    "rot": 0.0,
                    "lump2": 0.0,
                    "lump3": 0.0,
                    "phase2": 0.0,
                    "phase3": 0.0,
                    "rim": 0.0,
                },
            )
            specs.append(fallback)
            _paint(head, hu, owner, [fallback], len(specs))
            summaries = _summarise(head, owner, specs)
    type_codes = np.zeros(len(specs) + 1, dtype=np.uint8)
    for i, spec in enumerate(specs, start=1):
        type_codes[i] = HEMORRHAGE_TYPES.index(spec.type) + 1
    labels = np.zeros_like(owner)
    for k in _painted_frames(specs):
        labels[k] = type_codes[owner[k]]
    hu += _gaussian_noise(np.random.default_rng(noise_seq), hu.shape, head.noise_sd)
    np.clip(hu, HU_RANGE[0], HU_RANGE[1], out=hu)
    return PhantomStack(
        hu=hu,
        mask=owner > 0,
        labels=labels,
        pixel_spacing=(head.spacing, head.spacing),
        slice_thickness=SLICE_SPACING_MM,
        slice_spacing=SLICE_SPACING_MM,
        positions=head.positions.copy(),
        origin=head.origin,
        lesions=[s for s in summaries if s is not None],
        seed=int(seed),
        negative=bool(negative),
        noise_sd=head.noise_sd,
    )


def pool_seeds(n: int, seed: int) -> list[int]:
    """The per-stack seeds ``generate_pool(n, seed, …)`` uses, in order."""
    children = np.random.SeedSequence(int(seed)).spawn(n)
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in children]


def generate_pool(
    n: int,
    seed: int,
    negative_fraction: float = 0.3,
    size: int = 512,
    frames: int | None = None,
    sizes: Sequence[int] | None = None,
    lesion_contrast: str = "drawn",
) -> Iterator[PhantomStack]:
    """``n`` stacks, exactly ``round(n · negative_fraction)`` of them negative, placed at random.

    Stack ``i`` equals ``generate_stack(pool_seeds(n, seed)[i], negative=…, size=size, frames=frames)``;
    with ``sizes`` (a mixed pool, e.g. ``(96, 128, 160)``) stack ``i`` has size ``sizes[i % len(sizes)]``
    instead of ``size``. ``lesion_contrast`` is passed to every stack (see :func:`generate_stack`).
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if not 0.0 <= negative_fraction <= 1.0:
        raise ValueError(f"negative_fraction must be in [0, 1], got {negative_fraction}")
    if sizes is not None and len(sizes) == 0:
        raise ValueError("sizes must name at least one size")
    seeds = pool_seeds(n, seed)
    negatives = np.zeros(n, dtype=bool)
    negatives[: round(n * negative_fraction)] = True
    np.random.default_rng(np.random.SeedSequence([int(seed), n])).shuffle(negatives)
    for i, (stack_seed, negative) in enumerate(zip(seeds, negatives)):
        stack_size = int(sizes[i % len(sizes)]) if sizes is not None else size
        yield generate_stack(
            stack_seed,
            negative=bool(negative),
            size=stack_size,
            frames=frames,
            lesion_contrast=lesion_contrast,
        )
