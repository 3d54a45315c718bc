# syntax=docker/dockerfile:1
#
# Image of the attrition API, as run on the Hugging Face Space (Docker SDK, port 7860).
# Every `docker run` below is exercised by `make image-smoke` (scripts/image_smoke.sh):
#
#   docker build -t futurisys-attrition .
#   # demonstration, nothing kept (the database lives and dies with the container):
#   docker run --rm -p 7860:7860 -e ATTRITION_SECRET_KEY=... -e ATTRITION_AUDIT_KEY=... \
#     -e ATTRITION_ALLOW_EPHEMERAL_DB=1 futurisys-attrition
#   # kept data: a volume owned by uid 1000 on /data (the Space's persistent storage)
#   docker run -d -p 7860:7860 -v /srv/attrition:/data -e ATTRITION_SECRET_KEY=... \
#     -e ATTRITION_AUDIT_KEY=... futurisys-attrition
#   # external PostgreSQL: owner URL and the application role's password
#   docker run -d -p 7860:7860 -e DATABASE_URL=... -e ATTRITION_DB__APP_PASSWORD=... \
#     -e ATTRITION_SECRET_KEY=... -e ATTRITION_AUDIT_KEY=... futurisys-attrition
#
# Without /data mounted, DATABASE_URL or ATTRITION_ALLOW_EPHEMERAL_DB=1, the service refuses to
# start in prod (a French message says why). Two stages: the builder turns requirements.txt
# (pinned, generated) and the project into wheels; the runtime stage installs those wheels
# only (--no-index), so what runs is exactly what was locked. No secret is baked in: they come
# from the environment at run time (Space secrets: ATTRITION_SECRET_KEY, ATTRITION_AUDIT_KEY, DATABASE_URL,
# ATTRITION_DB__APP_PASSWORD, ATTRITION_ADMIN_KEY).
#
# Base: a maintained tag pinned by digest (multi-platform index). Dependabot
# (.github/dependabot.yml) proposes the new digest when the tag is rebuilt.

# --------------------------------------------------------------------------- base
FROM python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b AS base

# --------------------------------------------------------------------------- builder
FROM base AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# Dependencies first: this layer is reused as long as requirements.txt does not change.
COPY requirements.txt ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

# Then the project itself (its dependencies are already wheels above).
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --------------------------------------------------------------------------- runtime
FROM base AS runtime

LABEL org.opencontainers.image.title="futurisys-attrition" \
      org.opencontainers.image.description="API de prédiction de l'attrition des employés (Futurisys)" \
      org.opencontainers.image.vendor="Futurisys"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=prod \
    PORT=7860 \
    ATTRITION_PGDATA=/data/pgdata \
    ATTRITION_DATA_DIR=/data/raw \
    HOME=/home/user

# tini as PID 1: it forwards `docker stop`'s SIGTERM to the service (which stops PostgreSQL
# cleanly, even during the first start) and reaps the processes PostgreSQL leaves behind.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# Hugging Face Spaces run the container as uid 1000; the embedded PostgreSQL (pgserver)
# must not run as root either. /data is the Space's persistent storage mount point when
# enabled; created here (owned by uid 1000) so the image also runs without it.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin user \
    && mkdir -p /data/pgdata /data/raw /home/user/app \
    && chown -R user:user /data /home/user/app

# Install the wheels built above, from a bind mount: they do not end up in a layer.
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-index --find-links=/wheels --no-deps /wheels/futurisys_attrition-*.whl \
    && rm /tmp/requirements.txt

USER 1000:1000
WORKDIR /home/user/app

EXPOSE 7860

# No curl in the slim image: the standard library does the probe (non-2xx -> exit 1), on
# $PORT like the server. The start period covers the first start: migrations, data download
# and model training.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '7860') + '/health', timeout=4)"]

# The port comes from $PORT (7860 by default, see ENV above), as for the health check.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["attrition", "serve", "--host", "0.0.0.0"]
