#!/usr/bin/env bash
# Build the base image every TinyTorch Classroom image starts FROM:
# Debian 12 (bookworm) with Python 3.11, venv, pip and CA certificates.
#
#   docker/base/build-base.sh [--rebuild] [IMAGE]      (IMAGE defaults to tinytorch/base:bookworm)
#
# 1. If IMAGE already exists locally, nothing is done (use --rebuild to force).
# 2. Where a registry is reachable, the root file system is $TINYTORCH_BASE_REGISTRY_IMAGE
#    (default debian:bookworm-slim) plus the same four Debian packages.
# 3. Where none is (an air-gapped host like our CI), it falls back by itself to
#    debootstrap --variant=minbase from the Debian mirror, then `docker import`.
# 4. Either way, CA certificates the host trusts and the image does not (a TLS
#    inspecting proxy's) are added, so pip and apt work inside the images as on the
#    host; TINYTORCH_HOST_CA=no skips that.
# 5. Last, the empty virtual environment every image installs its pinned packages into
#    (/opt/venv, first on PATH), with pip's cache and Python's bytecode kept out of the layers.
# The image is labelled with a hash of that last stage: an IMAGE built from an older one is
# rebuilt, on the root file system already there.
# Prints "base: IMAGE built (registry|debootstrap|existing root file system)" or "base: IMAGE present".
set -euo pipefail

rebuild=0
if [ "${1:-}" = "--rebuild" ]; then rebuild=1; shift; fi
IMAGE=${1:-tinytorch/base:bookworm}
ROOTFS=${IMAGE%%:*}-rootfs:${IMAGE#*:}
REGISTRY_IMAGE=${TINYTORCH_BASE_REGISTRY_IMAGE:-debian:bookworm-slim}
MIRROR=${TINYTORCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_BUNDLE=/etc/ssl/certs/ca-certificates.crt
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,ca-certificates
HERE=$(cd "$(dirname "$0")" && pwd)

# The final base: the root file system, the host's extra CAs, every TLS client (OpenSSL, pip,
# requests) pointed at the system bundle, and the images' virtual environment.
FINAL_STAGE=$(cat <<'DOCKERFILE'
ARG ROOTFS
FROM ${ROOTFS}
COPY . /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ARG STAGE
LABEL org.tinytorch.base-stage=${STAGE}
DOCKERFILE
)
STAGE=$(printf '%s\n' "$FINAL_STAGE" | sha256sum | cut -c1-12)

if [ "$rebuild" = 0 ] && [ "$(docker image inspect "$IMAGE" \
        --format '{{ index .Config.Labels "org.tinytorch.base-stage" }}' 2>/dev/null)" = "$STAGE" ]; then
    echo "base: $IMAGE present"
    exit 0
fi
work=$(mktemp -d /var/tmp/tinytorch-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$rebuild" = 0 ] && docker image inspect "$ROOTFS" >/dev/null 2>&1; then
    # A base from an older final stage: the root file system is still good.
    how="existing root file system $ROOTFS"
elif timeout "${TINYTORCH_PULL_TIMEOUT:-120}" docker pull -q "$REGISTRY_IMAGE" >/dev/null 2>&1; then
    # A registry answers: use its image, smaller and signed by its publisher.
    how="registry: $REGISTRY_IMAGE"
    DOCKER_BUILDKIT=0 docker build -q -t "$ROOTFS" --build-arg "FROM_IMAGE=$REGISTRY_IMAGE" \
        --build-arg "PACKAGES=${PACKAGES//,/ }" -f - "$work" >/dev/null <<'DOCKERFILE'
ARG FROM_IMAGE
FROM ${FROM_IMAGE}
ARG PACKAGES
RUN apt-get update && apt-get install -y --no-install-recommends ${PACKAGES} \
    && rm -rf /var/lib/apt/lists/*
DOCKERFILE
else
    how="debootstrap"
    echo "base: no registry image $REGISTRY_IMAGE reachable; building $IMAGE with debootstrap from $MIRROR"
    command -v debootstrap >/dev/null || {
        echo "base: debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
    root=$work/root
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        echo "base: debootstrap failed; the end of its log:" >&2; tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # Later images apt-get install from the same suites, security updates included.
    cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SOURCES
    # What debootstrap leaves behind that an image does not need.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    tar --numeric-owner -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase $SUITE with $PACKAGES" - "$ROOTFS" >/dev/null
    rm -rf "$root"
fi

mkdir -p "$work/ca"
if [ "${TINYTORCH_HOST_CA:-yes}" != no ] && [ -f "$HOST_BUNDLE" ]; then
    docker run --rm "$ROOTFS" cat "$HOST_BUNDLE" >"$work/image-bundle.crt"
    added=$(python3 "$HERE/extra_ca.py" "$HOST_BUNDLE" "$work/image-bundle.crt" "$work/ca")
    [ "$added" = 0 ] || echo "base: adding $added CA certificate(s) the host trusts"
fi
printf '%s\n' "$FINAL_STAGE" | DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" --build-arg "ROOTFS=$ROOTFS" \
    --build-arg "STAGE=$STAGE" -f - "$work/ca" >/dev/null
echo "base: $IMAGE built ($how)"
