#!/usr/bin/env bash
# A stand-in for python:3.11-slim, for machines that reach Debian's archive but no container
# registry: Debian bookworm (its python3 is 3.11, with venv and the CA bundle) made with
# debootstrap and imported into podman. Like the official image it has `python`, `python3` and
# `python3.11` in /usr/local/bin, so the Dockerfile builds on it unchanged:
#
#   podman build --build-arg PYTHON_IMAGE="$(bash deployments/image/base.sh)" ...
#
# Prints the image's name on stdout, progress on stderr. The name carries a hash of this
# script's commands (comments aside): an image of that name already in podman's store is
# reused, so the base is built once per change to them (debootstrap: about 90 s of CPU,
# several minutes on a busy machine). Needs root, debootstrap and podman.
set -euo pipefail

script=$(readlink -f "${BASH_SOURCE[0]}")
image=localhost/orders-python-base:$(grep -v '^ *#' "$script" | sha256sum | cut -c1-12)
if podman image exists "$image"; then
    echo "base: $image is in the store already" >&2
    echo "$image"
    exit 0
fi

root=$(mktemp -d /var/tmp/orders-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base: debootstrap bookworm into $root" >&2
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$root" http://deb.debian.org/debian >/dev/null
for name in python python3 python3.11; do
    ln -s /usr/bin/python3.11 "$root/usr/local/bin/$name"
done
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar --numeric-owner -C "$root" -c . \
    | podman import --quiet \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$image" >/dev/null
echo "base: imported $image" >&2
echo "$image"
