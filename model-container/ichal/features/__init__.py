"""Per-stack features of the cost-sensitive active-learning loop (Kuo et al., MICCAI 2018).

* :mod:`.uncertainty` — §3.1, eq. (1): pixelwise Jensen–Shannon divergence of the ensemble,
  patch means over the sliding windows of :mod:`ichal.windows`, stack uncertainty = mean of the
  top-K patches.
* :mod:`.morphology` — §3.2: boundary length B and per-frame 8-connected component count M of the
  thresholded mean heatmap (inputs of the labeling-time model, eq. 2); torch (GPU) and scipy paths.
* :mod:`.detection` — §2: regions (connected components), frame and stack scores.
* :mod:`.metrics` — pixel / frame / stack / region average precision (§5).
* :mod:`.stack_features` — everything for one stack, and the ``features`` CLI.

Research use only: not a medical device, not for diagnosis.
"""

from ._common import InputError
from .detection import (
    DEFAULT_DETECTION_THRESHOLD,
    DetectionResult,
    Region,
    detect,
    detect_regions,
    frame_scores,
    stack_score,
)
from .metrics import (
    BinnedAP,
    DetectionEvaluator,
    RegionMatch,
    ap_from_ranked_hits,
    average_precision,
    match_regions,
    pixel_average_precision,
)
from .morphology import (
    DEFAULT_THRESHOLDS,
    LabelingFeatures,
    ThresholdFeatures,
    count_components_scipy,
    count_components_torch,
    label_components,
    labeling_features,
    perimeter_scipy,
    perimeter_torch,
)
from .stack_features import StackFeatures, features_main, stack_features
from .uncertainty import (
    DEFAULT_TOP_K,
    PatchUncertainty,
    UncertaintyResult,
    js_divergence,
    patch_uncertainty,
    stack_uncertainty,
    uncertainty,
)

__all__ = [
    "DEFAULT_DETECTION_THRESHOLD",
    "DEFAULT_THRESHOLDS",
    "DEFAULT_TOP_K",
    "BinnedAP",
    "DetectionEvaluator",
    "DetectionResult",
    "InputError",
    "LabelingFeatures",
    "PatchUncertainty",
    "Region",
    "RegionMatch",
    "StackFeatures",
    "ThresholdFeatures",
    "UncertaintyResult",
    "ap_from_ranked_hits",
    "average_precision",
    "count_components_scipy",
    "count_components_torch",
    "detect",
    "detect_regions",
    "features_main",
    "frame_scores",
    "js_divergence",
    "label_components",
    "labeling_features",
    "match_regions",
    "patch_uncertainty",
    "perimeter_scipy",
    "perimeter_torch",
    "pixel_average_precision",
    "stack_features",
    "stack_score",
    "stack_uncertainty",
    "uncertainty",
]
