#!/usr/bin/env bash
# The paper's active-learning experiments on synthetic phantoms → docs/experiments/ (README, plots, results.json); prints its run time.
# Installs what it needs first; options go to `python -m ichal experiments` (--config cpu|gpu, --seeds N, --seed S, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
root=$(pwd)
cd model-container
exec .venv/bin/python -m ichal experiments --out "$root/docs/experiments" "$@"
