# syntax=docker/dockerfile:1
# Switchyard image: the engine (`node src/main.ts`), the load generator (`node src/loadgen/main.ts`) and
# the pager sink (`node src/pager-sink/main.ts`). Node 24 runs the TypeScript sources directly (type
# stripping, no build step); tools run as Bun subprocesses with the Bun binary of the npm package
# @oven/bun-linux-<arch>, installed by `npm ci` from the lockfile.

# The tool sandbox wrapper (sandbox/, Go standard library only, static): every tool runs through it
# (README, Tool processes). GOTOOLCHAIN=local: the image's Go builds it, nothing is downloaded.
FROM golang:1.26-bookworm AS sandbox
WORKDIR /src
COPY sandbox ./
RUN CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -o /switchyard-sandbox . \
 && /switchyard-sandbox --probe

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `bun` package's postinstall is denied on purpose (see package.json allowScripts);
# its platform binary comes from the @oven/bun-* optional dependency, which needs no script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM node:24-bookworm-slim
# On 0.0.0.0 the engine refuses to start without API keys: mount a key file and set
# SWITCHYARD_API_KEYS_FILE (docker-compose.yml does, with its demo keys). README.md, Authentication.
# The tool process records (SWITCHYARD_RUNTIME_DIR) go under /tmp, whatever the store: the default with
# PostgreSQL, data/ under the working directory, is /app/data, which the node user cannot create. Tool
# processes live no longer than the container, so neither need their records (a tmpfs in docker-compose.yml).
ENV NODE_ENV=production \
    SWITCHYARD_BUN=/usr/local/bin/bun \
    SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_PORT=8080 \
    SWITCHYARD_DB=/data/switchyard.db \
    SWITCHYARD_RUNTIME_DIR=/tmp/switchyard/tool-processes
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# Where the engine looks for it (src/engine/runtime/sandbox.ts, SWITCHYARD_SANDBOX_WRAPPER overrides).
COPY --from=sandbox /switchyard-sandbox ./build/switchyard-sandbox
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY examples ./examples
ARG TARGETARCH
# `bun` on PATH is the npm package's binary for this architecture (checked by running it). /data holds
# the SQLite store (a named volume in docker-compose.yml), owned by the unprivileged user.
RUN case "${TARGETARCH:-amd64}" in \
      amd64) bun_pkg=bun-linux-x64 ;; \
      arm64) bun_pkg=bun-linux-aarch64 ;; \
      *) echo "unsupported architecture: ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && ln -s "/app/node_modules/@oven/${bun_pkg}/bin/bun" /usr/local/bin/bun \
 && bun --version \
 && mkdir -p /data \
 && chown node:node /data
USER node
EXPOSE 8080
CMD ["node", "--import", "./src/telemetry/register.ts", "src/main.ts"]
