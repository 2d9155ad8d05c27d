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
# CGO off: a static binary that needs no libc. -trimpath: no build paths in the binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tapbot ./cmd/tapbot \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/healthcheck

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="tapbot" \
      org.opencontainers.image.description="Temporary Access Passes for Microsoft Entra ID, approved in Slack and revealed once"
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
