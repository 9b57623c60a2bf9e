# authproxy: the ext_proc / SDS service. Build: docker build -t authproxy .
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY package.json ./
COPY examples ./examples
# iptables for `authproxy sandbox-net --apply` in a transparent-mode init container (run as root with NET_ADMIN);
# ca-certificates for `authproxy ca bundle` (the system roots of the sandbox's CA bundle, as the Helm chart's sidecar
# pod builds it).
RUN apt-get update && apt-get install -y --no-install-recommends iptables ca-certificates && rm -rf /var/lib/apt/lists/*
# Envoy's official image runs as uid 101; authproxy runs as the same uid so that only the two of them can
# open the 0600 Unix socket they share.
RUN groupadd -g 101 authproxy && useradd -u 101 -g 101 -M -s /usr/sbin/nologin authproxy \
 && mkdir -p /run/authproxy /etc/authproxy/keys && chown -R 101:101 /run/authproxy /etc/authproxy
USER 101:101
# --max-semi-space-size=8 (MiB): Node sizes V8's young generation from the memory it may use (1 MiB per
# semi-space up to a 256 MB heap, 32 MiB from 1 GB); at 32 MiB each scavenge paused the event loop for about
# 21 ms (up to 35 ms) on a busy machine, at 8 MiB about 5 ms for about the same GC time, at 1-2 MiB more CPU:
# most of authproxy's p99 through Envoy (docs/benchmarks.md#garbage-collection-and-the-tail).
# Run `authproxy serve` the same way outside the image.
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/bin/authproxy.js"]
CMD ["--help"]
