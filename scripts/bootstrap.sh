#!/usr/bin/env bash
# Installs everything the project needs on a fresh clone: Node packages (npm ci) and the Python
# environment of model-container/ (a virtual environment with pinned requirements and CPU PyTorch).
# Idempotent: each part is redone only when its lock/requirements files change, so re-runs take
# well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Node packages -----------------------------------------------------------------------------
node_stamp=node_modules/.ich-al-bootstrap
node_want="$(node --version) $(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f $node_stamp || "$(cat "$node_stamp")" != "$node_want" ]]; then
  echo "bootstrap: installing Node packages (npm ci)…"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$node_want" >"$node_stamp"
fi

# --- Python environment ------------------------------------------------------------------------
python_bin=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  [[ -n $candidate ]] || continue
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
    python_bin=$candidate
    break
  fi
done
if [[ -z $python_bin ]]; then
  echo "bootstrap: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
venv=model-container/.venv
py_stamp=$venv/.ich-al-bootstrap
py_want="$("$python_bin" --version) $(cat model-container/requirements.txt model-container/requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [[ ! -f $py_stamp || "$(cat "$py_stamp")" != "$py_want" ]]; then
  echo "bootstrap: creating the Python environment in $venv (CPU PyTorch, about a minute)…"
  rm -rf "$venv"
  "$python_bin" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r model-container/requirements-dev.txt 2>&1 | grep -v "is ignored" || true
  "$venv/bin/python" -c "import torch, moto, pydicom, nibabel, skimage, scipy" # fails loudly if the install did not complete
  echo "$py_want" >"$py_stamp"
fi

# --- dcmtk (optional: the DICOM reader tests against dcmtk-written files need it) ------------------
if ! command -v dcmconv >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    echo "bootstrap: installing dcmtk…"
    if ! apt_log=$({ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dcmtk; } 2>&1); then
      printf '%s\n' "$apt_log" | tail -n 5 >&2
      echo "bootstrap: dcmtk could not be installed; the dcmtk reader tests (tests/test_io_dcmtk.py) will be skipped"
    fi
  else
    echo "bootstrap: dcmtk is not installed (needs root and apt-get); the dcmtk reader tests (tests/test_io_dcmtk.py) will be skipped"
  fi
fi

# Chromium for the worklist page's browser tests comes with `npm ci` (devDependency @sparticuz/chromium;
# test/support/chromium.ts prefers CHROMIUM_PATH or Debian's /usr/bin/chromium when present).
