# Sourced by scripts/compose/test.sh: rootful podman as this machine allows it, and podman-compose.
#   - containers.conf (CONTAINERS_CONF): runtime runc (crun 1.8 of Debian bookworm refuses hybrid cgroup
#     hosts) and default ulimits within this shell's hard limits (podman's defaults fail with
#     `error setting rlimit ... operation not permitted` where they are lower).
#   - podman-compose 1.6.0 from PyPI, in a venv in the cache.
SWITCHYARD_CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}"
COMPOSE_CACHE="$SWITCHYARD_CACHE/compose"
PODMAN_COMPOSE_VERSION=1.6.0
mkdir -p "$COMPOSE_CACHE"

# Without CAP_SYS_RESOURCE no limit can be raised, and podman 4.3 runs conmon and runc with nproc at most
# 32768 (measured here: the shell's 96367 fails, 32768 works).
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
cat > "$COMPOSE_CACHE/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$COMPOSE_CACHE/containers.conf"

venv="$COMPOSE_CACHE/podman-compose-$PODMAN_COMPOSE_VERSION"
if [ ! -x "$venv/bin/podman-compose" ]; then
  echo "installing podman-compose $PODMAN_COMPOSE_VERSION into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION" >&2
fi
export PODMAN_COMPOSE="$venv/bin/podman-compose"
