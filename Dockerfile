# syntax=docker/dockerfile:1
# The orders service image. Two stages: the builder compiles wheels (with a C toolchain, for
# any dependency that has no wheel for this platform) and installs them into a virtualenv;
# the runtime stage gets only that virtualenv, so no compiler, pip cache or source tree ships.
#
#   docker build -t orders:dev .            or, inside minikube:  minikube image build -t orders:dev .
#
# Same Python minor in both stages: the venv's interpreter links to /usr/local/bin/python3.11.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what `pip install .` needs: pyproject.toml names README.md as the readme.
COPY pyproject.toml README.md ./
COPY orders ./orders
COPY projections ./projections
RUN pip wheel --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels orders \
    && /opt/venv/bin/pip uninstall -y pip setuptools

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
