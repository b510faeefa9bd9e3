# The relay as a container: the single executable (npm run release) on a distroless base with the
# C and C++ runtime it links against, as a non-root user. Multi-arch:
#   docker buildx build --platform linux/amd64,linux/arm64 -t smarthost .
# Each platform's build stage runs on that platform (emulated where needed), so each executable's
# blob is made by its own platform's Node.js. BUILD_IMAGE and RUNTIME_IMAGE may name local stand-ins
# (scripts/container/buildImage.sh makes them with debootstrap where no registry is reachable).
# No `# syntax=` line: BuildKit would fetch that frontend from Docker Hub, and nothing here needs it.
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN node scripts/release/release.mjs --out /out "$(node -p process.arch)" \
 && cp "/out/smarthost-linux-$(node -p process.arch)" /out/smarthost \
 && mkdir -p /out/state/spool /out/state/outbox

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/smarthost /usr/bin/smarthost
COPY packaging/container/smarthost.yaml /etc/smarthost/smarthost.yaml
COPY --from=build --chown=65532:65532 /out/state /var/lib/smarthost
USER 65532:65532
WORKDIR /var/lib/smarthost
ENV MALLOC_ARENA_MAX=2
# Spool and outbox: mail accepted with a 250 lives here until delivered.
VOLUME ["/var/lib/smarthost"]
EXPOSE 2525
# `smarthost healthcheck` asks the status listener's /readyz (the built-in config has one on
# loopback); a config without a status block is probed by reading the SMTP greeting instead.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 CMD ["/usr/bin/smarthost", "healthcheck"]
ENTRYPOINT ["/usr/bin/smarthost"]
CMD ["start"]
