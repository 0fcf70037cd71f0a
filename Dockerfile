# pullsched: the one static binary in an otherwise empty image, run as a
# non-root user. Every part is a subcommand; every setting a PULLSCHED_*
# variable (see the README's deploy section and docker-compose.yml).
#
#   docker build -t pullsched:local .
#   docker run --rm -p 9020:9020 pullsched:local        # dev: all parts, embedded broker
#   docker run --rm pullsched:local scheduler -h        # any part's flags
#
# The base images are build arguments whose defaults are the public images;
# scripts/docker-ci.sh passes images it built from package registries
# (GO_IMAGE=pullsched-ci/golang:...), for machines without an image registry.
# The build stage needs a Go toolchain, /etc/ssl/certs/ca-certificates.crt
# and the Go module proxy; the final stage needs nothing. BuildKit (the
# default builder since Docker 23; DOCKER_BUILDKIT=1 before) is required for
# the cache mounts.

ARG GO_VERSION=1.26
ARG GO_IMAGE=golang:${GO_VERSION}-alpine
ARG RUNTIME_IMAGE=scratch

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
# Static (no cgo), reproducible paths, no symbol tables: about 20 MB.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w" -o /out/pullsched ./cmd/pullsched
# scratch has no user database; give uid 65532 a name for ps and logs.
RUN mkdir -p /out/etc \
 && echo 'pullsched:x:65532:65532:pullsched:/nonexistent:/sbin/nologin' > /out/etc/passwd \
 && echo 'pullsched:x:65532:' > /out/etc/group

FROM ${RUNTIME_IMAGE}
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/pullsched /usr/local/bin/pullsched
USER 65532:65532
# controller, scheduler metrics, invoker bridge, workersim
EXPOSE 9020 9030 9040 8081
# The part's own binary probes its /readyz (a workersim's /status) at the
# address it listens on, read from the same PULLSCHED_LISTEN or config file.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/pullsched", "health"]
ENTRYPOINT ["/usr/local/bin/pullsched"]
CMD ["dev", "--listen", "0.0.0.0:9020"]
