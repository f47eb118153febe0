# syntax=docker/dockerfile:1
#
# loopgate's container image: one binary, every subcommand (router, ingest, optimizer, migrate,
# topics, fleet, load, ...), run as a non-root user. Two targets:
#
#   docker build -t loopgate .                     the default: a fully static binary
#                                                  (CGO_ENABLED=0 -tags nochdb) on
#                                                  distroless/static, server backend only
#                                                  (warehouse.backend: server)
#   docker build --target chdb -t loopgate:chdb .  the same binary with the embedded engine:
#                                                  libchdb.so from npm on distroless/base
#                                                  (glibc), for `loopgate dev` and one-process
#                                                  installs on the embedded backend
#
# Why two: the embedded backend binds libchdb with purego, which needs the C library's dynamic
# loader even without cgo, so that binary is dynamically linked against glibc (ld.so, libc,
# libdl, libpthread; libchdb itself needs libm and librt too). The nochdb build leaves the
# binding out (warehouse/chdb_nobind.go) and links statically. No cgo either way.
#
# The image sets only LOOPGATE_DATA_DIR (/var/lib/loopgate, a volume: the router's spill and
# journal, the embedded engine's data). Listen addresses come from the config file: set
# router_addr: 0.0.0.0:8935 and admin.addr: 0.0.0.0:9464 there (deploy/compose and deploy/helm
# do), since the binary's defaults bind 127.0.0.1. See docs/DEPLOY.md.

ARG GO_VERSION=1.26.8
ARG NODE_VERSION=22

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV GOFLAGS=-mod=readonly CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	go build -trimpath -tags nochdb -ldflags "-s -w -X main.version=${VERSION}" -o /out/static/loopgate ./cmd/loopgate && \
	go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/chdb/loopgate ./cmd/loopgate && \
	mkdir -p /out/data

# libchdb.so, fetched exactly as deploy/local/chdb.sh does (warehouse.ChdbVersion must match).
FROM node:${NODE_VERSION}-bookworm-slim AS libchdb
ARG CHDB_NPM_VERSION=26.7.3-stable.1
WORKDIR /tmp/chdb
RUN npm pack --silent "@chdb/lib-linux-x64-gnu@${CHDB_NPM_VERSION}" && \
	tar -xzf chdb-lib-linux-x64-gnu-*.tgz package/libchdb.so && \
	chmod 0755 package/libchdb.so

FROM gcr.io/distroless/base-debian12:nonroot AS chdb
COPY --from=build /out/chdb/loopgate /usr/local/bin/loopgate
COPY --from=libchdb /tmp/chdb/package/libchdb.so /usr/local/lib/loopgate/libchdb.so
COPY --from=build --chown=65532:65532 /out/data /var/lib/loopgate
ENV LOOPGATE_DATA_DIR=/var/lib/loopgate LOOPGATE_CHDB_LIB=/usr/local/lib/loopgate/libchdb.so
USER 65532:65532
VOLUME /var/lib/loopgate
EXPOSE 8935 9464
ENTRYPOINT ["/usr/local/bin/loopgate"]
CMD ["help"]

# The default target comes last.
FROM gcr.io/distroless/static-debian12:nonroot AS static
COPY --from=build /out/static/loopgate /usr/local/bin/loopgate
COPY --from=build --chown=65532:65532 /out/data /var/lib/loopgate
ENV LOOPGATE_DATA_DIR=/var/lib/loopgate
USER 65532:65532
VOLUME /var/lib/loopgate
EXPOSE 8935 9464
ENTRYPOINT ["/usr/local/bin/loopgate"]
CMD ["help"]
