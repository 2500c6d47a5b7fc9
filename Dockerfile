# syntax=docker/dockerfile:1.7
# spinecds CDS Hooks service.
#   docker build -t spinecds:0.1.0 .
#   docker run --rm -p 8000:8000 -v spinecds-data:/var/lib/spinecds -e SPINECDS_PSEUDONYM_KEY=... spinecds:0.1.0
#   (the key, 32+ bytes, is required with authentication on: docs/deployment.md)
# Settings are SPINECDS_* environment variables (docs/deployment.md). TLS terminates in front of this
# container (reverse proxy / ingress): CDS Hooks requires HTTPS, the container speaks plain HTTP.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: wheels for the project and every dependency (durable-rules compiles a C extension) ----
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src

# Dependencies first, from pyproject.toml alone: the slow C build stays cached until they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['deploy']))" > requirements.txt \
 && pip wheel --wheel-dir /wheels -r requirements.txt

# The project: code plus its data (rule files, score tables, terminology) packaged into the wheel.
COPY README.md ./
COPY engine/ engine/
COPY cds_hooks/ cds_hooks/
COPY fhir_profiles/ fhir_profiles/
COPY rules/ rules/
# No sandbox/: the synthetic patients and the try-it page are a development kit, not the service.
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---- runtime: the wheels installed, nothing to compile with, a non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/spinecds-metrics \
    SPINECDS_HOST=0.0.0.0 \
    SPINECDS_PORT=8000 \
    SPINECDS_DATABASE_PATH=/var/lib/spinecds/spinecds.sqlite3 \
    SPINECDS_LOG_FORMAT=json

RUN groupadd --system --gid 10001 spinecds \
 && useradd --system --uid 10001 --gid spinecds --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin spinecds \
 && install -d -o spinecds -g spinecds -m 0750 /var/lib/spinecds

# Bind-mounted from the build stage, so the wheels never become a layer of the image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "spinecds[deploy]"

COPY deploy/gunicorn.conf.py /etc/spinecds/gunicorn.conf.py

USER 10001:10001
WORKDIR /var/lib/spinecds
VOLUME ["/var/lib/spinecds"]
EXPOSE 8000

# No curl in slim images: the probe is Python's own urllib.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"]

# `exec` makes gunicorn PID 1, so it receives SIGTERM (graceful stop) and SIGHUP (reload workers).
# The worker class applies cds_hooks/serving.py: no proxy-header trust unless SPINECDS_TRUST_PROXY_HEADERS,
# no access log (the service logs one JSON line per request, without query strings), no Server header.
CMD ["sh", "-c", "exec gunicorn cds_hooks.app:app -k cds_hooks.gunicorn_worker.SpinecdsWorker --workers ${WEB_CONCURRENCY:-2} --bind 0.0.0.0:8000 --config /etc/spinecds/gunicorn.conf.py"]
