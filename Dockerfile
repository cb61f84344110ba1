# Gatehouse container image: a static binary on a distroless base, running as an unprivileged user, with the data
# dir as a volume.
#
#   docker build -t gatehouse --build-arg VERSION=v1.2.3 .
#   docker volume create gatehouse-data
#   docker run -d --name gatehouse -p 8443:8443 -p 20080:20080 -v gatehouse-data:/var/lib/gatehouse \
#     -e GATEHOUSE_ADMIN_PASSWORD='Change-me-1' gatehouse
#   docker stop -t 45 gatehouse    # longer than --shutdown-grace, so requests in flight finish and trails are sealed

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
# The build context has no .git, so the version comes from the build argument instead of the VCS stamp.
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/gatehouse-dev/gatehouse/internal/version.Override=${VERSION}" \
      -o /out/gatehouse ./cmd/gatehouse \
 && install -d -m 0700 -o 65532 -g 65532 /out/data

# distroless/static: no shell, no package manager; the nonroot variant runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
# A new named volume starts as a copy of this directory, so it is the unprivileged user's, mode 0700.
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
USER 65532:65532
ENV GATEHOUSE_DATA_DIR=/var/lib/gatehouse
VOLUME ["/var/lib/gatehouse"]
EXPOSE 8443 20080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve"]
