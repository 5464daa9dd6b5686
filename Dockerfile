# syntax=docker/dockerfile:1
# One image for every Conveyor service; the command picks the service:
#   docker run conveyor:dev                                (ingest, the default)
#   docker run conveyor:dev python -m services.audit
# docker-compose.yml builds it and runs each service from it (see docs/docker.md).

ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

# ---- build: install the project and its runtime dependencies into /opt/venv ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml alone, so editing the code does not
# reinstall them. Only [project].dependencies: the dev extra stays out of the image.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (the packages pyproject.toml lists; .dockerignore keeps the
# context small).
COPY . .
RUN pip install --no-deps .

# ---- runtime: the venv only, no sources, no build tools, non-root ----
FROM ${PYTHON_IMAGE}

# The services listen on every interface inside the container (the settings default,
# 127.0.0.1, would be unreachable from outside it).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    CONVEYOR_INGEST_HOST=0.0.0.0 \
    CONVEYOR_AUDIT_HOST=0.0.0.0

RUN groupadd --system --gid 10001 conveyor \
    && useradd --system --uid 10001 --gid conveyor --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin conveyor
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER conveyor:conveyor

# ingest (CONVEYOR_INGEST_PORT), audit (CONVEYOR_AUDIT_PORT)
EXPOSE 8001 8005

# Liveness of the default service (ingest). When the image runs another service,
# override the healthcheck with that service's port, as docker-compose.yml does.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CONVEYOR_INGEST_PORT', '8001'), timeout=3)"]

CMD ["python", "-m", "services.ingest"]
