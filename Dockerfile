# syntax=docker/dockerfile:1
#
# Procore DMSA connector image.
#
#   docker build -t procore-dmsa-connector:0.1.0 .
#   docker run --rm procore-dmsa-connector:0.1.0 keys generate
#   docker run -d -p 8000:8000 -v connector-data:/app/data --env-file deploy/connector.env \
#       procore-dmsa-connector:0.1.0
#
# The entrypoint is the `connector` console script and the default command is `serve`, so
# `docker run IMAGE migrate` (or `keys rotate`, `sync --company-id ID`) runs the other commands.
# The default `serve` applies pending migrations on start, which suits one container on SQLite;
# every multi-replica deployment (deploy/compose.yaml, deploy/k8s/) runs `serve --no-migrate`
# and one `connector migrate` step instead, so replicas never race on the schema.
# Building needs BuildKit (the default builder of current Docker) for the bind mount below.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: turn the project and its dependencies into wheels ------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# .dockerignore admits only what the wheel is built from, and the lock file.
COPY pyproject.toml README.md requirements.lock ./
COPY app ./app
COPY procore_sim ./procore_sim
COPY migrations ./migrations

# Same front end as CI (`python -m pip` reading pyproject.toml): the project wheel, then the
# exact dependency versions of requirements.lock, each checked against its sha256 there
# (--require-hashes). Every dependency publishes manylinux wheels for CPython 3.11, so no
# compiler is needed here either.
RUN python -m pip wheel --no-deps --wheel-dir /wheels/project . \
 && python -m pip download --require-hashes --no-deps --only-binary=:all: \
        --dest /wheels/deps -r requirements.lock \
 && cp requirements.lock /wheels/

# ---- runtime: the wheels installed on a clean slim base, run as a non-root user --------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --system --gid 10001 connector \
 && useradd --system --uid 10001 --gid connector --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin connector

# The wheels are bind-mounted from the builder, so they never become a layer of this image.
# Dependencies come only from the lock (hashes checked again); the project adds none of its own.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels/deps --require-hashes \
        -r /wheels/requirements.lock \
 && python -m pip install --no-index --no-deps /wheels/project/*.whl \
 && python -m pip check

# Bytecode was compiled at install time; the root filesystem may be read-only at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONNECTOR_LOG_FORMAT=json

# ./data is where the SQLite defaults live: a volume, owned by the service user.
WORKDIR /app
RUN mkdir /app/data && chown connector:connector /app/data
VOLUME ["/app/data"]

USER 10001:10001
EXPOSE 8000

# Slim images have no curl. /livez answers on every role (api, worker, all); a worker listens on
# 8000 only when given `--port 8000`, as deploy/compose.yaml and deploy/k8s/ do.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["connector"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
