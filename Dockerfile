# beitseg serve on Debian bookworm with Debian's libtorch (CPU). Build and run:
#   docker build -t beitseg .
#   docker run --rm -p 8080:8080 -v /srv/models:/models:ro beitseg \
#     serve --config /models/config.py --weights /models/weights.safetensors --host 0.0.0.0
# docs/serving.md covers TLS (a reverse proxy in front), probes and limits.

# --- build: compilers, headers and dev dependencies (TypeScript) ---
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ libtorch-dev libopenblas0-pthread libgloo-dev libdnnl-dev \
      python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# scripts off: the addon is built below, once the sources are in place
RUN npm ci --ignore-scripts
COPY . .
RUN node scripts/build-native.mjs && npx tsc -p tsconfig.build.json && npm prune --omit=dev

# --- runtime: libraries only, no compiler, a non-root user ---
FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtorch1.13 libopenblas0-pthread libgloo0 libdnnl2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin beitseg
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json /app/package-lock.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist/src ./dist/src
COPY --from=build --chown=root:root /app/bin ./bin
COPY --from=build --chown=root:root /app/configs ./configs
COPY --from=build --chown=root:root /app/src/serve/public ./src/serve/public
COPY --from=build --chown=root:root /app/native/build/beitseg.node ./native/build/beitseg.node
USER beitseg
ENV NODE_ENV=production
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/livez').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/beitseg.js"]
CMD ["serve", "--help"]
