#!/usr/bin/env bash
# The local default: the pipeline on this machine against moto server (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
exec npx tsx scripts/local-run.ts "$@"
