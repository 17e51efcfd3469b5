#!/usr/bin/env bash
# Make a local Python 3.11 base image for machines that cannot pull one:
# a minimal Debian bookworm root file system (debootstrap) with python3 and
# venv, imported into Docker as local/debian-python:3.11-bookworm. Then
#   docker build --build-arg PYTHON_IMAGE=local/debian-python:3.11-bookworm -t wardcast .
#
# The host's CA bundle is copied in and pip pointed at it, so a build behind
# a TLS-inspecting proxy (whose certificate the host trusts) can reach PyPI.
# Needs root, debootstrap and a Debian mirror; takes a few minutes.
set -euo pipefail
IMAGE=${IMAGE:-local/debian-python:3.11-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT=$(mktemp -d /var/tmp/wardcast-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOT" "$MIRROR"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar -C "$ROOT" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    -c 'CMD ["python3"]' \
    - "$IMAGE"
echo "made $IMAGE"
