"""Query-by-committee uncertainty of a CT stack (Kuo et al., MICCAI 2018, §3.1, eq. 1).

Pixelwise uncertainty
    Each of the N ensemble members outputs, at every pixel, a Bernoulli distribution
    P_i = (p_i, 1 - p_i) over {hemorrhage, background}. The Jensen–Shannon divergence of the
    committee is (eq. 1)

        JS(P_1, ..., P_N) = H( (1/N) Σ_i P_i ) - (1/N) Σ_i H(P_i),
        H(p) = -p ln p - (1 - p) ln(1 - p)                      (natural log, nats),

    with the convention 0 · ln 0 = 0 (``torch.special.xlogy``), so p ∈ {0, 1} is exact and never
    NaN. Inputs are clamped to [0, 1] first. JS is a concave-entropy gap, hence JS ≥ 0, and
    JS ≤ H(mean) ≤ ln 2 for binary outputs (also JS ≤ ln N); the float result is clamped to
    [0, min(ln 2, ln N)] to remove rounding residue of order 1e-7 (float32). N = 1 gives JS ≡ 0.

Patch uncertainty
    The mean of the JS map over each sliding-window crop, with the crop offsets of
    :func:`ichal.windows.window_starts` (the same windows the PatchFCN is applied on; default
    160 × 160 crops every 80 px plus a last crop flush with the border), for every frame:

        U(f, t, l) = (1 / crop²) Σ_{y=t}^{t+crop-1} Σ_{x=l}^{l+crop-1} JS(f, y, x).

    All patch sums come from one float64 integral image (summed-area table), so the cost is
    O(F·H·W) whatever the crop/stride — no loop over pixels or windows.

Stack uncertainty
    V = mean of the K largest patch uncertainties of the stack (all frames pooled), K = 200 by
    default as in the paper; when the stack has fewer than K patches, K_used = number of patches
    (i.e. the mean of all of them). K_used is reported.

Everything runs on the device of the input tensor (CPU or CUDA); numpy input is wrapped without a
copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ichal.windows import DEFAULT_CROP, DEFAULT_STRIDE, window_starts

from ._common import ArrayLike, as_float, as_tensor, check_probabilities

DEFAULT_TOP_K = 200

__all__ = [
    "DEFAULT_TOP_K",
    "PatchUncertainty",
    "TopK",
    "UncertaintyResult",
    "binary_entropy",
    "js_divergence",
    "patch_uncertainty",
    "stack_uncertainty",
    "uncertainty",
]


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = -p ln p - (1-p) ln(1-p) in nats, exactly 0 at p ∈ {0, 1} (``p`` clamped to [0, 1])."""
    return _entropy(as_float(p).clamp(0.0, 1.0))


def _entropy(p: torch.Tensor) -> torch.Tensor:
    q = 1.0 - p
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(q, q))


def js_divergence(probs: ArrayLike, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Pixelwise Jensen–Shannon divergence across the committee, eq. (1).

    Args:
        probs: hemorrhage probabilities ``[N, ...]`` (first axis = ensemble members), tensor or numpy.
        dtype: computation dtype; default float32 (float64 inputs stay float64).

    Returns:
        JS map of shape ``probs.shape[1:]`` on the input's device, in [0, min(ln 2, ln N)].
    """
    t = as_float(as_tensor(probs))
    if dtype is not None:
        t = t.to(dtype)
    if t.ndim < 1 or t.shape[0] < 1:
        raise ValueError(
            f"probs needs a leading ensemble axis with at least one member, got shape {tuple(t.shape)}"
        )
    n = t.shape[0]
    # Accumulate member by member: never materialises an [N, ...] entropy tensor.
    mean_p = torch.zeros(t.shape[1:], dtype=t.dtype, device=t.device)
    mean_h = torch.zeros_like(mean_p)
    for i in range(n):
        p = t[i].clamp(0.0, 1.0)
        mean_p.add_(p)
        mean_h.add_(_entropy(p))
    mean_p.div_(n)
    mean_h.div_(n)
    js = _entropy(mean_p).sub_(mean_h)
    upper = min(math.log(2.0), math.log(n))
    return js.clamp_(0.0, upper)


@dataclass(frozen=True)
class PatchUncertainty:
    """Mean JS per sliding-window patch: ``values[f, i, j]`` is the crop at (row_starts[i], col_starts[j])."""

    values: torch.Tensor  # [F, n_rows, n_cols] float64
    row_starts: tuple[int, ...]
    col_starts: tuple[int, ...]
    crop: int
    stride: int

    @property
    def count(self) -> int:
        return int(self.values.numel())

    def position(self, flat_index: int) -> tuple[int, int, int]:
        """(frame, top, left) of the patch at ``flat_index`` of ``values.flatten()``."""
        nr, nc = len(self.row_starts), len(self.col_starts)
        f, rem = divmod(int(flat_index), nr * nc)
        i, j = divmod(rem, nc)
        return f, self.row_starts[i], self.col_starts[j]


def patch_uncertainty(
    js_map: ArrayLike, *, crop: int = DEFAULT_CROP, stride: int = DEFAULT_STRIDE
) -> PatchUncertainty:
    """Mean of ``js_map`` ``[F, H, W]`` (or ``[H, W]``) inside every sliding-window crop of every frame.

    Uses a float64 summed-area table S (S[f, y, x] = Σ_{y'<y, x'<x} JS[f, y', x']); the sum of the
    crop at (t, l) is S[t+c, l+c] - S[t, l+c] - S[t+c, l] + S[t, l].

    Raises:
        ValueError: when a frame side is shorter than ``crop`` (the caller pads, see ichal.windows).
    """
    js = as_tensor(js_map)
    if js.ndim == 2:
        js = js.unsqueeze(0)
    if js.ndim != 3:
        raise ValueError(f"js_map must be [F, H, W] or [H, W], got shape {tuple(js.shape)}")
    f, h, w = js.shape
    rows = window_starts(h, crop, stride)
    cols = window_starts(w, crop, stride)
    sat = torch.zeros((f, h + 1, w + 1), dtype=torch.float64, device=js.device)
    sat[:, 1:, 1:] = js.to(torch.float64).cumsum(1).cumsum(2)
    r0 = torch.tensor(rows, dtype=torch.long, device=js.device)
    c0 = torch.tensor(cols, dtype=torch.long, device=js.device)
    r1, c1 = r0 + crop, c0 + crop
    top = sat.index_select(1, r0)
    bottom = sat.index_select(1, r1)
    sums = (
        bottom.index_select(2, c1)
        - top.index_select(2, c1)
        - bottom.index_select(2, c0)
        + top.index_select(2, c0)
    )
    return PatchUncertainty(
        values=sums / float(crop * crop),
        row_starts=tuple(rows),
        col_starts=tuple(cols),
        crop=crop,
        stride=stride,
    )


@dataclass(frozen=True)
class TopK:
    """The K most uncertain patches (descending) and their mean, the stack uncertainty V."""

    value: float
    k_used: int
    k_requested: int
    values: tuple[float, ...]
    patches: tuple[tuple[int, int, int], ...]  # (frame, top, left) per entry of ``values``


def stack_uncertainty(patches: PatchUncertainty, top_k: int = DEFAULT_TOP_K) -> TopK:
    """V = mean of the ``min(top_k, #patches)`` largest patch uncertainties."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    flat = patches.values.flatten()
    k = min(int(top_k), flat.numel())
    vals, idx = torch.topk(flat, k, largest=True, sorted=True)
    mean = float(vals.mean())
    return TopK(
        value=mean,
        k_used=k,
        k_requested=int(top_k),
        values=tuple(float(v) for v in vals.tolist()),
        patches=tuple(patches.position(i) for i in idx.tolist()),
    )


@dataclass
class UncertaintyResult:
    """Everything §3.1 produces for one stack; tensors live on the input's device."""

    stack_uncertainty: float
    top_k: int
    top_k_requested: int
    top_patches: tuple[tuple[int, int, int], ...]
    top_values: tuple[float, ...]
    patches: PatchUncertainty
    js_map: torch.Tensor = field(repr=False)  # [F, H, W]
    mean_heatmap: torch.Tensor = field(repr=False)  # [F, H, W], mean over ensemble members


def uncertainty(
    probs: ArrayLike,
    *,
    top_k: int = DEFAULT_TOP_K,
    crop: int = DEFAULT_CROP,
    stride: int = DEFAULT_STRIDE,
    validate: bool = True,
) -> UncertaintyResult:
    """JS map, mean heatmap, patch uncertainties and stack uncertainty of ``probs`` ``[N, F, H, W]``."""
    t = as_tensor(probs)
    if validate:
        check_probabilities(t, ndim=4)
    t = as_float(t)
    js = js_divergence(t)
    mean = t.mean(0)
    pu = patch_uncertainty(js, crop=crop, stride=stride)
    tk = stack_uncertainty(pu, top_k)
    return UncertaintyResult(
        stack_uncertainty=tk.value,
        top_k=tk.k_used,
        top_k_requested=tk.k_requested,
        top_patches=tk.patches,
        top_values=tk.values,
        patches=pu,
        js_map=js,
        mean_heatmap=mean,
    )
