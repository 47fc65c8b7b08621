# syntax=docker/dockerfile:1
# One image for all three daemons (tracker, turnd, credapi) plus two helpers: healthcheck (the
# HEALTHCHECK probe) and nodeaddr (the Helm chart's turnd init container, which writes the
# node's ExternalIP for relay.public_ip_file). Every ./cmd/... binary lands in /usr/local/bin.
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t switchboard:dev .
# Pick the daemon with the command:  docker run switchboard:dev turnd --config=/etc/switchboard/turnd.yaml
# The defaults (no --config) are production-safe; see configs/<daemon>.yaml for every key.

# Base images, versioned here. Tags move (distroless :nonroot is rebuilt for security fixes),
# so for a reproducible, verified build pin both by their index digest and pass them in:
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot   # Digest: sha256:...
#   cosign verify gcr.io/distroless/static-debian12:nonroot@sha256:<digest> \
#     --certificate-oidc-issuer https://accounts.google.com \
#     --certificate-identity keyless@distroless.iam.gserviceaccount.com
#   docker build --build-arg RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:<digest> \
#     --build-arg BUILD_IMAGE=golang:1.26.8-bookworm@sha256:<digest> ...
ARG GO_VERSION=1.26.8
ARG BUILD_IMAGE=golang:${GO_VERSION}-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Dependencies first so source edits reuse the module download; BuildKit cache mounts keep
# modules and compiled packages between builds without putting them in a layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download && go mod verify
COPY . .
ARG VERSION=dev
# Static, reproducible binaries: no cgo (distroless/static has no libc), no local paths.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X github.com/switchboard-p2p/switchboard/pkg/daemon.Version=${VERSION}" \
      -o /out/ ./cmd/...

# distroless/static: no shell, no package manager; :nonroot runs as uid/gid 65532.
FROM ${RUNTIME_IMAGE} AS final
ARG VERSION=dev
LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="WebTorrent tracker, TURN relay and TURN credential API for serverless P2P apps" \
      org.opencontainers.image.source="https://github.com/switchboard-p2p/switchboard" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ /usr/local/bin/
COPY configs/ /etc/switchboard/
USER 65532:65532
# tracker ws 8000; turnd 3478 udp+tcp, 5349 TLS; credapi 8080; ops (metrics/health) 9401-9403.
# TURN relay ports (49152-65535/udp by default) are published per deployment, not here:
# see docker-compose.yml and the chart.
EXPOSE 8000/tcp 3478/udp 3478/tcp 5349/tcp 8080/tcp 9401/tcp 9402/tcp 9403/tcp
# The probe is a binary of its own (no curl here); without --url it finds the running
# daemon on its default ops port. Deployments that move ops.listen pass --url.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/healthcheck"]
CMD ["/usr/local/bin/tracker"]
