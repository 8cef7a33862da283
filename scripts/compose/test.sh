#!/usr/bin/env bash
# The compose test (npm run test:compose): docker-compose.yml run for real on rootful podman.
#   1. podman settings and podman-compose (scripts/compose/podman-env.sh);
#   2. the base images and stand-ins (scripts/compose/images.sh; cached, keyed by their inputs);
#   3. the project's Dockerfile built as switchyard:local (podman's layer cache makes a rebuild quick);
#   4. test/compose (vitest.compose.config.ts): services, traffic, alerts, traces, failover, down -v.
# Needs: root (rootful podman), podman + runc + debootstrap, python3 (venv), the stack binaries
# (scripts/stack-binaries.sh). Each part prints how long it took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

[ "$(id -u)" -eq 0 ] || { echo "compose test: rootful podman is required (run as root)" >&2; exit 1; }
for tool in podman runc debootstrap python3; do
  command -v "$tool" >/dev/null || { echo "compose test: $tool is required (.ci/run installs podman, runc and debootstrap)" >&2; exit 1; }
done
source scripts/compose/podman-env.sh

timed() { # WHAT COMMAND...
  local what=$1 started; shift
  started=$(date +%s)
  "$@"
  echo "[compose-test] $what: $(( $(date +%s) - started )) s"
}

timed "base images and stand-ins" bash scripts/compose/images.sh

# npm ci inside the build: where outgoing TLS is re-signed by a local CA, npm needs the host's CA bundle.
# Both are mounted for the build only (a RUN-time bind mount): nothing of them is left in the image.
build_mounts=()
ca_bundle=/etc/ssl/certs/ca-certificates.crt
if [ -s "$ca_bundle" ]; then
  npmrc="$COMPOSE_CACHE/build-npmrc"
  printf 'cafile=%s\n' "$ca_bundle" > "$npmrc"
  build_mounts=(-v "$ca_bundle:$ca_bundle:ro" -v "$npmrc:/usr/local/etc/npmrc:ro")
fi
# --pull=never: the base image is the local node:24-bookworm-slim. Podman 4.3 sets no TARGETARCH (the
# Dockerfile defaults to amd64), so pass the machine's.
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
build_project_image() {
  podman build -q --pull=never --network=host --build-arg "TARGETARCH=$arch" "${build_mounts[@]}" -t switchyard:local . >/dev/null
}
timed "project image (Dockerfile)" build_project_image

timed "compose test" npx vitest run --config vitest.compose.config.ts "$@"
