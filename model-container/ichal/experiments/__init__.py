"""Active-learning experiments of Kuo et al. 2018 on synthetic phantoms (``python -m ichal experiments``).

* :mod:`.labeling_time` — the labeling-time model (§3.2, Fig. 3) and batch totals;
* :mod:`.core_set` — core-set AL: QBC, QBC + similarity, random (§5.1, Fig. 4), and selection cost;
* :mod:`.cost_sensitive` — cost-sensitive AL: CAL (knapsack), UAL, random under a time budget (§5.2, Fig. 5);
* :mod:`.selection` — the ``ich-al`` command as a subprocess, and the similarity selector;
* :mod:`.runner` — runs them and writes ``docs/experiments/`` (README.md, PNGs, results.json).

Results are properties of the simulation, not clinical results.
"""

import os

# On a shared CPU, OpenMP threads that spin while waiting slow torch down by 10× or more when the
# cores are oversubscribed; passive waiting costs nothing when they are not. It only takes effect
# if set before torch is first imported (as it is for `python -m ichal experiments`).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import CONFIGS, CPU, GPU, TINY, ExperimentConfig, LabelingTimeTruth
from .runner import main, run_experiments

__all__ = [
    "CONFIGS",
    "CPU",
    "GPU",
    "TINY",
    "ExperimentConfig",
    "LabelingTimeTruth",
    "main",
    "run_experiments",
]
