"""PatchFCN ensemble of the ICH active-learning pipeline (Kuo et al., MICCAI 2018, §2 and §3.1).

- :mod:`ichal.model.drn`: DRN-D-38 / DRN-D-22 backbones (output stride 8).
- :mod:`ichal.model.patchfcn`: backbone + 1×1 pixel classifier, upsampled to the input size.
- :mod:`ichal.model.sliding_window`: patch-wise inference over whole frames (160² crops, stride 80).
- :mod:`ichal.model.ensemble`: the query-by-committee ensemble (N = 4), its save/load format.

Research use only: not a medical device, not for diagnosis.
"""

from ichal.model.drn import DRN, drn_d_22, drn_d_38
from ichal.model.ensemble import INTENDED_USE, Ensemble, build_ensemble, read_manifest
from ichal.model.patchfcn import PatchFCN, patchfcn, patchfcn_skeleton
from ichal.model.sliding_window import predict_frames, predict_frames_multi

__all__ = [
    "DRN",
    "INTENDED_USE",
    "Ensemble",
    "PatchFCN",
    "build_ensemble",
    "drn_d_22",
    "drn_d_38",
    "patchfcn",
    "patchfcn_skeleton",
    "predict_frames",
    "predict_frames_multi",
    "read_manifest",
]
