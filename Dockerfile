# syntax=docker/dockerfile:1
# The cutover operator image: built from source with the locked dependencies, shipped on a
# distroless base (no shell, no package manager) as a non-root user.
#
#   docker build --build-arg VERSION=0.1.0 --build-arg GIT_REVISION="$(git rev-parse --short HEAD)" -t cutover .

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# What `cutover --version` reports: the revision is read at compile time (option_env!), so it
# must be in the environment of the build itself, not only of the final image.
ARG VERSION=""
ARG GIT_REVISION=""
ENV CUTOVER_VERSION=${VERSION} \
    CUTOVER_GIT_REVISION=${GIT_REVISION}
# The cache mounts keep the crate registry and the build directory between builds; the binary
# is copied out of the cached target directory because that directory is not in the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cutover \
    && install -D -m 0755 target/release/cutover /out/cutover

# cc (not static): the binary links glibc dynamically, as every default Rust Linux build does.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=""
ARG GIT_REVISION=""
LABEL org.opencontainers.image.title="cutover" \
      org.opencontainers.image.description="Kubernetes operator for safe maintenance of clustered applications" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}"
COPY --from=builder /out/cutover /usr/local/bin/cutover
# 65532 is the distroless "nonroot" user; numeric, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# The operator's probes and metrics (cutover run --metrics-addr).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/cutover"]
CMD ["run"]
