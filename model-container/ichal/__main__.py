"""Command line of the scoring engine: ``python -m ichal <command> [options]``.

phantoms   write a pool of synthetic head-CT studies (DICOM zip / NIfTI / labeled npz)
train      train the PatchFCN ensemble (SageMaker training contract; paths as options locally)
serve      serve the ensemble on SageMaker's hosting contract (GET /ping, POST /invocations, :8080)
score      score one stack and print the JSON the endpoint returns
features   uncertainty and labeling-time features from per-model probabilities (probs.npy)
evaluate   held-out AP (pixel, region, frame, stack) and uncertainty by lesion kind on phantoms
experiments  the paper's active-learning experiments on phantoms → docs/experiments/ (tables, plots, JSON)
"""

from __future__ import annotations

import sys

COMMANDS = ("phantoms", "train", "serve", "score", "features", "evaluate", "experiments")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        from .train.sagemaker_entry import main as run
    elif command == "serve":
        from .serve.main import main as run
    elif command == "score":
        from .scoring_cli import main as run
    elif command == "features":
        from .features.__main__ import main as run
    elif command == "evaluate":
        from .evaluate import main as run
    elif command == "phantoms":
        from .phantoms.__main__ import main as run
    elif command == "experiments":
        from .experiments.runner import main as run
    else:
        print(f"ichal: unknown command {command!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return int(run(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
