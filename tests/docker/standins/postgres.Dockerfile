# STAND-IN for the official postgres:<major> image: a TEST FIXTURE, built offline from Debian's packages by
# scripts/docker-standins.sh only when the official image cannot be pulled (no registry). Never run it as the
# product: the compose file names the official image.
# How it differs from the official image:
#   - PostgreSQL is Debian 12's postgresql-15, whatever major the tag names (the project's SQL, dbt run and tests
#     pass on 15 as on 17 and 18).
#   - Locale C.UTF-8 (the official image initialises with en_US.utf8).
#   - Its entrypoint (postgres-entrypoint.sh) does only what this project uses: on an empty PGDATA, initdb with
#     POSTGRES_USER / POSTGRES_PASSWORD, POSTGRES_DB created, password (scram-sha-256) logins from the network,
#     trust on the local socket, the *.sh scripts of /docker-entrypoint-initdb.d run (not sourced) on a server
#     listening on the socket only; no *.sql there, no POSTGRES_INITDB_ARGS, no *_FILE secrets.
# The same as the official image: user postgres with uid/gid 999, PGDATA=/var/lib/postgresql/data (a volume),
# listen_addresses='*', pg_isready and psql on PATH, STOPSIGNAL SIGINT, port 5432.
FROM debian:bookworm-slim

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV LANG=C.UTF-8 \
    PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data

# The official image's uid/gid, and no cluster made by the package (the entrypoint makes one in PGDATA).
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 2777 /var/run/postgresql \
    && install -d -o postgres -g postgres -m 700 "$PGDATA"

COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

VOLUME /var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
