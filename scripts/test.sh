#!/usr/bin/env bash
# Every test of the project: TypeScript (type check, lint, vitest unit + integration against moto
# server) and Python (ruff lint and format check, pytest in model-container/). Installs what it needs first.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true

failed=()
step() {
  local name=$1
  shift
  echo "== $name"
  "$@" || failed+=("$name")
}
step "typescript: type check" npx tsc --noEmit -p tsconfig.json
step "typescript: type check (worklist page)" npx tsc --noEmit -p web/worklist/tsconfig.json
step "typescript: lint and format" npx biome check --error-on-warnings .
step "typescript: vitest" npx vitest run
step "python: ruff check" bash -c 'cd model-container && .venv/bin/ruff check .'
step "python: ruff format --check" bash -c 'cd model-container && .venv/bin/ruff format --check .'
step "python: pytest" bash -c 'cd model-container && .venv/bin/python -m pytest'

if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test suites passed"
