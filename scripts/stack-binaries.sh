#!/usr/bin/env bash
# Builds (or reuses) the real stack binaries at the pinned versions and prints where they are:
#
#   export OTELCOL_BIN=... PROMETHEUS_BIN=... PROMTOOL_BIN=... JAEGER_BIN=... OTELCOL_TIER_BIN=... ALERTMANAGER_BIN=... AMTOOL_BIN=...
#          VICTORIALOGS_BIN=...
#
# Usage: scripts/stack-binaries.sh [--print | --no-build] [--help]
#   eval "$(scripts/stack-binaries.sh)"
# Only the export line goes to stdout; progress and errors go to stderr.
# `--print` is accepted for readability: the script always builds only what is missing, then prints.
# `--no-build` builds nothing: prints the paths anyway and exits 3 when a binary is missing or stale.
#
# Everything is built from Go modules through the Go module proxy (no Docker, no GitHub downloads), with
# Go's checksum verification as configured on the machine (this script never turns it off):
#   - Collector: OpenTelemetry Collector Builder from collector/builder-config.yaml; the Collector tier
#     (agent + tail-sampling gateways) from collector/builder-tier.yaml, at a release of its own;
#   - Prometheus + promtool, Alertmanager + amtool, Jaeger v2 (the stack tests' trace store; users run
#     Tempo, whose AGPL module is never built), VictoriaLogs (the stack tests' log store: users run Loki,
#     also AGPL and never built): wrapper modules in scripts/build/<name>/ that require the upstream module
#     and repeat its replace directives.
# Binaries land in $SWITCHYARD_CACHE/stack/<name>-<version>/ (default ~/.cache/switchyard), with a stamp
# of the build inputs: a second run reuses them in well under a second. Build logs: $CACHE/stack/logs/.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; }
NO_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --print) ;;
    --no-build) NO_BUILD=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "stack-binaries: unknown argument: $arg" >&2; usage; exit 2 ;;
  esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/stack"
BUILD_DIR="$REPO/scripts/build"

# Pinned versions (docker-compose.yml pins the matching images; Jaeger is CI's trace store only).
OTELCOL_VERSION=0.165.0          # core v0.165.0 + contrib v0.165.1 (collector/builder-config.yaml)
PROMETHEUS_VERSION=3.16.0        # prom/prometheus:v3.16.0 (Go module github.com/prometheus/prometheus v0.316.0)
ALERTMANAGER_VERSION=0.34.2      # prom/alertmanager:v0.34.2
JAEGER_VERSION=1.75.0            # github.com/jaegertracing/jaeger/cmd/jaeger (Jaeger v2 binary)
# The Collector tier (agent + gateways, tail sampling): core v0.161.0 + stable v1.67.0 + contrib v0.161.0
# (collector/builder-tier.yaml), the one release at which the tail sampling processor passes and the
# loadbalancing exporter is served. Not in the `pins:` line of inputs_hash: the manifest carries it.
OTELCOL_TIER_VERSION=0.161.0
# VictoriaLogs (Apache-2.0), the stack tests' log store: it takes OTLP logs and answers LogsQL queries, as
# Jaeger stands in for Tempo (users run Loki, AGPL). Not in the `pins:` line of inputs_hash either (adding
# it there would rebuild every other binary): scripts/build/victorialogs/go.mod carries the version.
VICTORIALOGS_VERSION=1.52.2

# The Go toolchain: be gentle on small machines (2 cores) and never touch a repo-local go.work.
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off
GO_P="${SWITCHYARD_GO_BUILD_P:-2}"
export GOMAXPROCS="${GOMAXPROCS:-$GO_P}"
GO_BUILD=(go build -p "$GO_P" -trimpath)
# Bump when a build recipe below changes in a way that must rebuild cached binaries.
RECIPE=2

log() { echo "stack-binaries: $*" >&2; }
die() { echo "stack-binaries: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "the Go toolchain is required (go not found on PATH)"
mkdir -p "$CACHE/logs" "$CACHE/build" "$CACHE/src" "$CACHE/tools"

case "$CACHE" in *[[:space:]]*) die "the cache path must not contain whitespace: $CACHE" ;; esac

# One build at a time per cache (several test runs may call this at once).
exec 9>"$CACHE/.lock"
if [ "$NO_BUILD" = 0 ] && ! flock -n 9; then
  log "another stack-binaries run holds $CACHE/.lock; waiting for it"
  flock 9
fi

# With --no-build, a missing or stale binary is recorded instead of built.
MISSING=()
skip_build() { # NAME VERSION
  [ "$NO_BUILD" = 1 ] || return 1
  MISSING+=("$1 $2")
  return 0
}

# Hash of a build's inputs (files under the repo + this script's pins); a change triggers a rebuild.
inputs_hash() {
  { printf '%s\n' "$@" | LC_ALL=C sort | while read -r f; do echo "== $f"; cat "$REPO/$f"; done
    echo "go: $(go env GOVERSION)"
    echo "recipe: $RECIPE"
    echo "pins: $OTELCOL_VERSION $PROMETHEUS_VERSION $ALERTMANAGER_VERSION $JAEGER_VERSION"
  } | sha256sum | cut -c1-16
}

# is_fresh DIR HASH BIN... : all binaries present and built from these inputs.
is_fresh() {
  local dir=$1 hash=$2; shift 2
  [ -f "$dir/.inputs" ] && [ "$(cat "$dir/.inputs")" = "$hash" ] || return 1
  local b; for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

# run_logged NAME VERSION LOGFILE CMD... : runs a build step, turning a failure into a clear error.
run_logged() {
  local name=$1 version=$2 logfile=$3; shift 3
  echo "+ $*" >>"$logfile"
  if ! "$@" >>"$logfile" 2>&1; then
    echo "---- last lines of $logfile ----" >&2
    tail -n 25 "$logfile" >&2
    die "building $name $version failed at: $*
  full log: $logfile"
  fi
}

# finish NAME VERSION OUTDIR TMPDIR HASH STARTED : moves a finished build into place atomically.
finish() {
  local name=$1 version=$2 out=$3 tmp=$4 hash=$5 started=$6
  echo "$hash" >"$tmp/.inputs"
  rm -rf "$out"
  mv "$tmp" "$out"
  log "built $name $version in $(( $(date +%s) - started ))s -> $out"
}

version_ldflags_prometheus_common() { # version, revision
  local p=github.com/prometheus/common/version
  echo "-s -w -X $p.Version=$1 -X $p.Revision=$2 -X $p.Branch=HEAD -X $p.BuildUser=switchyard -X $p.BuildDate=19700101-00:00:00"
}

# ---- Prometheus + promtool -------------------------------------------------------------------
build_prometheus() {
  local name=prometheus version=$PROMETHEUS_VERSION
  local out="$CACHE/$name-$version" logfile="$CACHE/logs/$name-$version.log"
  local hash; hash=$(inputs_hash scripts/build/prometheus/go.mod scripts/build/prometheus/go.sum)
  is_fresh "$out" "$hash" prometheus promtool && return 0
  skip_build "$name" "$version" && return 0
  log "building Prometheus $version + promtool (cold build takes several minutes; log: $logfile)"
  local started; started=$(date +%s); : >"$logfile"
  local work="$CACHE/build/$name-$version" tmp="$out.tmp"
  rm -rf "$work" "$tmp"; mkdir -p "$work" "$tmp"
  cp "$BUILD_DIR/prometheus/go.mod" "$BUILD_DIR/prometheus/go.sum" "$work/"
  local ldflags; ldflags=$(version_ldflags_prometheus_common "$version" "v0.316.0")
  (cd "$work" && run_logged "$name" "$version" "$logfile" "${GO_BUILD[@]}" -ldflags "$ldflags" -o "$tmp/" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
  finish "$name" "$version" "$out" "$tmp" "$hash" "$started"
}

# ---- Alertmanager + amtool -------------------------------------------------------------------
build_alertmanager() {
  local name=alertmanager version=$ALERTMANAGER_VERSION
  local out="$CACHE/$name-$version" logfile="$CACHE/logs/$name-$version.log"
  local hash; hash=$(inputs_hash scripts/build/alertmanager/go.mod scripts/build/alertmanager/go.sum)
  is_fresh "$out" "$hash" alertmanager amtool && return 0
  skip_build "$name" "$version" && return 0
  log "building Alertmanager $version + amtool (log: $logfile)"
  local started; started=$(date +%s); : >"$logfile"
  local work="$CACHE/build/$name-$version" tmp="$out.tmp"
  rm -rf "$work" "$tmp"; mkdir -p "$work" "$tmp"
  cp "$BUILD_DIR/alertmanager/go.mod" "$BUILD_DIR/alertmanager/go.sum" "$work/"
  # The module zip lacks the web UI build output that ui/web.go embeds (//go:embed app/dist: "no matching
  # files"). Build from a copy of the module with a one-page placeholder UI; the API (/api/v2) is intact.
  local src="$CACHE/src/alertmanager-$version"
  if [ ! -f "$src/ui/app/dist/index.html" ]; then
    local mod_dir
    mod_dir=$(cd "$work" && go mod download -json "github.com/prometheus/alertmanager@v$version" 2>>"$logfile" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -n "$mod_dir" ] || die "building $name $version failed: cannot download github.com/prometheus/alertmanager@v$version (log: $logfile)"
    rm -rf "$src.tmp"; cp -r "$mod_dir" "$src.tmp"; chmod -R u+w "$src.tmp"
    mkdir -p "$src.tmp/ui/app/dist"
    printf '%s\n' '<!doctype html><title>Alertmanager</title><p>Alertmanager v'"$version"' built from its Go module by' \
      'Switchyard (scripts/stack-binaries.sh) without the web UI. The API is at <a href="api/v2/status">/api/v2</a>.' \
      >"$src.tmp/ui/app/dist/index.html"
    rm -rf "$src"; mv "$src.tmp" "$src"
  fi
  (cd "$work" && go mod edit -replace "github.com/prometheus/alertmanager=$src")
  local ldflags; ldflags=$(version_ldflags_prometheus_common "$version" "v$version")
  (cd "$work" && run_logged "$name" "$version" "$logfile" "${GO_BUILD[@]}" -ldflags "$ldflags" -o "$tmp/" \
    github.com/prometheus/alertmanager/cmd/alertmanager github.com/prometheus/alertmanager/cmd/amtool)
  finish "$name" "$version" "$out" "$tmp" "$hash" "$started"
}

# ---- OpenTelemetry Collectors (builder) ------------------------------------------------------
# build_collector NAME VERSION MANIFEST BINARY : the builder of release VERSION generates the distribution of
# MANIFEST (a file under collector/), then go build compiles it into $CACHE/NAME-VERSION/BINARY.
build_collector() {
  local name=$1 version=$2 manifest=$3 binary=$4
  local out="$CACHE/$name-$version" logfile="$CACHE/logs/$name-$version.log"
  local hash; hash=$(inputs_hash "$manifest")
  is_fresh "$out" "$hash" "$binary" && return 0
  skip_build "$name" "$version" && return 0
  log "building the OpenTelemetry Collector $name $version from $manifest with the builder (log: $logfile)"
  local started; started=$(date +%s); : >"$logfile"
  local builder_dir="$CACHE/tools/builder-$version"
  if [ ! -x "$builder_dir/builder" ]; then
    run_logged "otelcol builder" "v$version" "$logfile" env GOBIN="$builder_dir" \
      go install -trimpath -ldflags "-s -w" "go.opentelemetry.io/collector/cmd/builder@v$version"
  fi
  local work="$CACHE/build/$name-$version" tmp="$out.tmp"
  rm -rf "$work" "$tmp"; mkdir -p "$work" "$tmp"
  cp "$REPO/$manifest" "$work/builder-config.yaml"
  # Generate the sources and resolve modules (into $work/_build, the manifest's output_path), then compile
  # with our go flags.
  (cd "$work" && run_logged "$name" "$version" "$logfile" "$builder_dir/builder" \
    --config builder-config.yaml --skip-compilation)
  (cd "$work/_build" &&
    run_logged "$name" "$version" "$logfile" "${GO_BUILD[@]}" -ldflags "-s -w" -o "$tmp/$binary" .)
  finish "$name" "$version" "$out" "$tmp" "$hash" "$started"
}

# The Collector of docker-compose.yml (collector/otelcol.yaml).
build_otelcol() { build_collector otelcol "$OTELCOL_VERSION" collector/builder-config.yaml otelcol; }

# The Collector tier (collector/agent.yaml, collector/gateway.yaml): its own release, see the pin above.
build_otelcol_tier() { build_collector otelcol-tier "$OTELCOL_TIER_VERSION" collector/builder-tier.yaml otelcol-tier; }

# build_wrapper NAME VERSION BINARIES LDFLAGS CGO PACKAGE... : go build of the wrapper module scripts/build/NAME
# (go.mod + go.sum) into $CACHE/NAME-VERSION/, which then holds BINARIES (space-separated); CGO is 0 or 1.
build_wrapper() {
  local name=$1 version=$2 binaries=$3 ldflags=$4 cgo=$5; shift 5
  local out="$CACHE/$name-$version" logfile="$CACHE/logs/$name-$version.log"
  local hash; hash=$(inputs_hash "scripts/build/$name/go.mod" "scripts/build/$name/go.sum")
  # shellcheck disable=SC2086 # BINARIES is a list
  is_fresh "$out" "$hash" $binaries && return 0
  skip_build "$name" "$version" && return 0
  log "building $name $version (log: $logfile)"
  local started; started=$(date +%s); : >"$logfile"
  local work="$CACHE/build/$name-$version" tmp="$out.tmp"
  rm -rf "$work" "$tmp"; mkdir -p "$work" "$tmp"
  cp "$BUILD_DIR/$name/go.mod" "$BUILD_DIR/$name/go.sum" "$work/"
  (cd "$work" && run_logged "$name" "$version" "$logfile" env CGO_ENABLED="$cgo" "${GO_BUILD[@]}" -ldflags "$ldflags" \
    -o "$tmp/" "$@")
  finish "$name" "$version" "$out" "$tmp" "$hash" "$started"
}

# ---- Jaeger v2 (the stack tests' trace store) -------------------------------------------------
build_jaeger() {
  build_wrapper jaeger "$JAEGER_VERSION" jaeger "-s -w" "$(go env CGO_ENABLED)" github.com/jaegertracing/jaeger/cmd/jaeger
}

# ---- VictoriaLogs (the stack tests' log store) ------------------------------------------------
# CGO off: zstd comes from its pure-Go fallback (github.com/klauspost/compress), no C library to compile.
build_victorialogs() {
  build_wrapper victorialogs "$VICTORIALOGS_VERSION" victoria-logs \
    "-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-v$VICTORIALOGS_VERSION" 0 \
    github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs
}

# Order matters: other work waits on promtool/amtool first, the Collector next, Jaeger, VictoriaLogs, then
# the tier. SWITCHYARD_STACK_ONLY="alertmanager otelcol" restricts building to those (a development aid).
only="${SWITCHYARD_STACK_ONLY:-prometheus alertmanager otelcol jaeger victorialogs otelcol_tier}"
for target in prometheus alertmanager otelcol jaeger victorialogs otelcol_tier; do
  case " $only " in *" $target "*) "build_$target" ;; esac
done

echo "export OTELCOL_BIN=$CACHE/otelcol-$OTELCOL_VERSION/otelcol" \
  "PROMETHEUS_BIN=$CACHE/prometheus-$PROMETHEUS_VERSION/prometheus" \
  "PROMTOOL_BIN=$CACHE/prometheus-$PROMETHEUS_VERSION/promtool" \
  "JAEGER_BIN=$CACHE/jaeger-$JAEGER_VERSION/jaeger" \
  "OTELCOL_TIER_BIN=$CACHE/otelcol-tier-$OTELCOL_TIER_VERSION/otelcol-tier" \
  "ALERTMANAGER_BIN=$CACHE/alertmanager-$ALERTMANAGER_VERSION/alertmanager" \
  "AMTOOL_BIN=$CACHE/alertmanager-$ALERTMANAGER_VERSION/amtool" \
  "VICTORIALOGS_BIN=$CACHE/victorialogs-$VICTORIALOGS_VERSION/victoria-logs"

if [ "${#MISSING[@]}" -gt 0 ]; then
  log "not built (run scripts/stack-binaries.sh to build): ${MISSING[*]}"
  exit 3
fi
