# syntax=docker/dockerfile:1
# The orders service image. Two stages: the builder installs the locked dependencies and the
# service into a virtualenv; the runtime stage gets only that virtualenv, so no pip, build
# backend, binutils, download cache or source tree ships.
#
#   docker build -t orders:dev .            or, inside minikube:  minikube image build -t orders:dev .
#
# With podman, or where no registry is reachable: deployments/README.md. `make image-check`
# builds this file and runs the image as Kubernetes would.
#
# Both stages start from the same image: the venv's interpreter is a link to the builder's
# /usr/local/bin/python, which the runtime stage has at the same place, at the same version.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# strip, from Debian's binutils, for the compiled extensions below; the builder only.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils
# The dependencies first, in a layer of their own, so a change to the code alone does not
# install them again. The file is written by `make lock` from uv.lock: every package pinned to
# one version with its hashes, so pip installs exactly these files or fails. Wheels only: each
# locked package publishes them for Linux on x86_64 and arm64, so nothing is compiled, the
# builder needs no C toolchain, and a package without a wheel fails here, loudly. Then the
# compiled extensions lose the debug symbols their wheels ship (uvloop's loop module: 13 MB,
# 1.6 MB stripped; about 30 MB of the virtualenv in all). --strip-unneeded keeps the dynamic
# symbols the interpreter loads them by; what goes is the names of their internal functions,
# which only a native debugger (gdb, py-spy --native) would show.
# The hashes in pip's RECORD no longer match those files; nothing checks them at run time.
COPY deployments/image/requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --quiet --require-hashes --only-binary :all: \
       -r /tmp/requirements.txt \
    && find /opt/venv -type f -name '*.so' -exec strip --strip-unneeded {} +
WORKDIR /src
# Only what building the service needs: pyproject.toml names README.md as the readme.
COPY pyproject.toml README.md ./
COPY orders ./orders
COPY projections ./projections
# The service itself, built by the locked setuptools already in the venv (no build isolation,
# so nothing more is downloaded); then the installer and the build backend leave the venv.
RUN /opt/venv/bin/pip install --quiet --no-deps --no-build-isolation . \
    && /opt/venv/bin/pip uninstall --quiet -y pip setuptools

FROM ${PYTHON_IMAGE} AS runtime
# The numeric uid/gid the Kubernetes manifests run as (runAsUser/runAsGroup/fsGroup 10001);
# tests/deployments checks that the two agree.
RUN groupadd --system --gid 10001 orders \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin orders
COPY --from=builder /opt/venv /opt/venv
# The root filesystem is read-only in Kubernetes: never write .pyc files (pip compiled them
# at install), and log straight to stdout.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# uvicorn finishes in-flight requests on SIGTERM, the signal Kubernetes and docker stop send.
STOPSIGNAL SIGTERM
ENTRYPOINT ["orders"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
