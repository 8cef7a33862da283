#!/usr/bin/env bash
# Builds the tool sandbox wrapper (sandbox/, Go standard library only) to build/switchyard-sandbox, where the engine
# looks for it (src/engine/runtime/sandbox.ts). Go's build cache makes a second run take well under a second.
# Used by .ci/run and the test suite's global setup; the Dockerfile builds the same sources in a stage of its own.
#
# Usage: scripts/build-sandbox.sh [OUTPUT]     (default OUTPUT: build/switchyard-sandbox)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/switchyard-sandbox}"
mkdir -p "$(dirname "$out")"
# Static (no cgo): the same binary runs on any libc, and in the slim image.
(cd sandbox && CGO_ENABLED=0 go build -trimpath -o "../$out.tmp" .)
mv -f "$out.tmp" "$out"
