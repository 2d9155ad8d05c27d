# tapbot handles credentials, so its image holds as little as possible: two static binaries (the
# bot and a health probe) on distroless/static, which has CA certificates and tzdata but no shell,
# no package manager and no libc, running as a numeric non-root user.
#
#   docker build -t tapbot .
#
# For production, pin both base images by digest (golang:1.26@sha256:..., ...:nonroot@sha256:...)
# so a rebuild cannot silently change what runs.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so editing code does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What tapbot version, its start-up log line, tapbot_build_info and the labels below report. The
# build is not sent .git, so pass them, e.g.
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t tapbot .
# Declared after go mod download, so new values do not download the modules again.
ARG VERSION=""
ARG REVISION=""
ARG BUILD_DATE=""
# CGO off: a static binary that needs no libc. -trimpath: no build paths in the binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION} -X main.buildDate=${BUILD_DATE}" -o /out/tapbot ./cmd/tapbot \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/healthcheck

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=""
ARG REVISION=""
ARG BUILD_DATE=""
LABEL org.opencontainers.image.title="tapbot" \
      org.opencontainers.image.description="Temporary Access Passes for Microsoft Entra ID, approved in Slack and revealed once" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="https://github.com/tapbot/tapbot" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/tapbot /out/healthcheck /
# Numeric (distroless's nonroot is 65532): Kubernetes' runAsNonRoot can only verify a numeric
# user; with USER nonroot:nonroot it refuses to start the pod.
USER 65532:65532
# /healthz, /readyz and /metrics (TAP_HTTP_ADDR, default :8080). Nothing else listens: Slack is
# reached over an outbound socket-mode connection.
EXPOSE 8080
# Docker and Compose only; Kubernetes ignores this and uses the probes in deploy/kubernetes.
# start-period covers tapbot's start-up checks (Redis 30 s, Entra ID 60 s, Slack 2 x 30 s at most).
HEALTHCHECK --interval=15s --timeout=5s --start-period=2m --retries=3 CMD ["/healthcheck", "/healthz"]
# tapbot stops on SIGTERM (Docker's default stop signal) and gives in-flight work
# TAP_SHUTDOWN_TIMEOUT (20 s): give it more than that, e.g. docker stop -t 30.
ENTRYPOINT ["/tapbot"]
