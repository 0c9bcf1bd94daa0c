"""``python -m ichal.features --probs probs.npy ...`` (see :mod:`ichal.features.stack_features`).

``main(argv)`` is also what the package dispatcher ``python -m ichal features ...`` calls.
"""

from __future__ import annotations

import sys

from .stack_features import features_main

main = features_main

if __name__ == "__main__":
    sys.exit(features_main(sys.argv[1:]))
