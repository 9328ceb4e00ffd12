# slotguard-exporter and slotguard-agent in one runtime image (used by docker-compose.yml).
#   docker build --build-arg SLOTGUARD_REVISION="$(git rev-parse --short=12 HEAD)" -t slotguard .
# Build stage: Debian bookworm's -dev packages (the same ones scripts/install-deps.sh installs),
# a Release build of the two binaries, tests and benchmarks off. CI (scripts/test.sh) runs the
# same cmake invocation into build-release/, with -DSLOTGUARD_WERROR=ON.
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config \
      prometheus-cpp-dev libmicrohttpd-dev libgnutls28-dev libhiredis-dev libyaml-cpp-dev libspdlog-dev \
      nlohmann-json3-dev libcli11-dev libexpected-dev libssl-dev libcrypt-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# .git is not in the build context: the revision build_info reports comes from here
#   docker build --build-arg SLOTGUARD_REVISION="$(git rev-parse --short=12 HEAD)" -t slotguard .
ARG SLOTGUARD_REVISION=unknown
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
      -DSLOTGUARD_BUILD_TESTS=OFF -DSLOTGUARD_BUILD_BENCH=OFF -DSLOTGUARD_TEST_HOOKS=OFF \
      -DSLOTGUARD_REVISION="${SLOTGUARD_REVISION}" \
 && cmake --build /build -j"$(nproc)" --target slotguard-exporter slotguard-agent \
 && strip /build/bin/slotguard-exporter /build/bin/slotguard-agent

# Runtime stage: only the shared libraries the two binaries link.
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libprometheus-cpp-core1.0 libmicrohttpd12 libgnutls30 libhiredis0.14 \
      libyaml-cpp0.7 libspdlog1.10 libfmt9 libssl3 libcrypt1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/slotguard --shell /usr/sbin/nologin slotguard \
 && mkdir -p /var/lib/slotguard /etc/slotguard \
 && chown slotguard:slotguard /var/lib/slotguard
COPY --from=build /build/bin/slotguard-exporter /build/bin/slotguard-agent /usr/local/bin/
COPY packaging/docker/healthcheck.sh /usr/local/bin/slotguard-healthcheck
# Fails the image build when a shared library is missing.
RUN slotguard-exporter --version && slotguard-agent --version
USER slotguard
WORKDIR /var/lib/slotguard
# exporter, agent (metrics, control API, Alertmanager webhook)
EXPOSE 9478 9479
# GET /healthz on 9478 or 9479 (or $SLOTGUARD_HEALTH_PORT) must answer "ok".
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/slotguard-healthcheck"]
CMD ["slotguard-exporter", "--help"]
