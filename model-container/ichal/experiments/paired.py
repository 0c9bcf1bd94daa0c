"""Paired comparisons over repeats: per-repeat differences, sign counts, paired tests, 95 % intervals.

Strategies of one repeat share the seed set, the seed committee and every training seed, so the
difference of two strategies in that repeat is a paired observation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats


def interval(values: Sequence[float]) -> dict[str, float]:
    """Mean, SD and the 95 % t-interval of the mean (the interval is the mean itself for one value)."""
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean())
    if arr.size < 2:
        return {"mean": mean, "sd": 0.0, "low": mean, "high": mean, "n": int(arr.size)}
    sd = float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.975, arr.size - 1)) * sd / math.sqrt(arr.size)
    return {"mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "n": int(arr.size)}


def _p(test, *args, **kwargs) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(test(*args, **kwargs).pvalue)
        except ValueError:  # e.g. Wilcoxon with every difference zero
            return None
    return None if math.isnan(value) else value


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """a − b per repeat: the differences, their interval, sign counts, and paired t and Wilcoxon
    signed-rank p-values (two-sided, and one-sided for a > b)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples of different lengths: {x.size} and {y.size}")
    d = x - y
    enough = d.size >= 2 and bool(np.any(d != 0))
    return {
        "differences": d.tolist(),
        **interval(d),
        "positive": int((d > 0).sum()),
        "negative": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "t_p": _p(stats.ttest_rel, x, y) if enough else None,
        "t_p_greater": _p(stats.ttest_rel, x, y, alternative="greater") if enough else None,
        "wilcoxon_p": _p(stats.wilcoxon, d) if enough else None,
        "wilcoxon_p_greater": _p(stats.wilcoxon, d, alternative="greater") if enough else None,
    }
