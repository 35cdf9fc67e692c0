# syntax=docker/dockerfile:1
# Consentry: one image for every role (API, relay, integrator, commands, migrations), the
# `consentry` command as its entry point. docs/deployment.md explains how it is run.
#
#   docker build -t consentry .
#   docker run --rm consentry --help
#
# Two stages: `build` installs the project and its dependencies into a virtual environment;
# the final stage copies only that environment onto a slim Python, with no compiler, no pip
# cache and no source tree, and runs as an unprivileged user.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/consentry
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The `kafka` extra brings confluent-kafka for `consentry relay` and `consentry commands`.
RUN /opt/consentry/bin/pip install --no-compile ".[kafka]" \
    && /opt/consentry/bin/python -m pip uninstall -y pip setuptools \
    && /opt/consentry/bin/python -m compileall -q /opt/consentry/lib

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="consentry" \
      org.opencontainers.image.description="Self-hosted system of record for consent" \
      org.opencontainers.image.licenses="Apache-2.0"
# No build tools here: the slim base has no compiler, and pip itself is removed, so nothing
# can be installed into the running image.
RUN python -m pip uninstall -y pip setuptools wheel >/dev/null 2>&1 || true; \
    groupadd --system --gid 10001 consentry \
    && useradd --system --uid 10001 --gid consentry --home-dir /var/lib/consentry \
       --shell /usr/sbin/nologin consentry \
    && mkdir -p /var/lib/consentry/keys \
    && chown -R consentry:consentry /var/lib/consentry \
    && chmod 0700 /var/lib/consentry/keys
COPY --from=build /opt/consentry /opt/consentry
ENV PATH=/opt/consentry/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CONSENTRY_HOST=0.0.0.0 \
    CONSENTRY_PORT=8000 \
    CONSENTRY_SIGNING_KEYS_DIR=/var/lib/consentry/keys \
    CONSENTRY_DATABASE_URL=sqlite:////var/lib/consentry/consentry.db
WORKDIR /var/lib/consentry
VOLUME ["/var/lib/consentry"]
USER consentry:consentry
EXPOSE 8000
# /healthz answers while the process is up (the database is /readyz's business); read the port
# from the environment, so a changed CONSENTRY_PORT keeps the check right. Workers that serve no
# HTTP (relay, integrate, commands) turn it off in compose.yaml.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CONSENTRY_PORT', '8000'), timeout=2)"]
ENTRYPOINT ["consentry"]
CMD ["serve"]
