#!/bin/sh
# The role the app logs in as (APP_DB_USER, password APP_DB_PASSWORD): not a superuser, the owner of POSTGRES_DB
# and of everything in it (docs/security.md). The postgres image runs this once, on a new volume, as
# POSTGRES_USER (the superuser, for setting up only). It is idempotent: scripts/docker-up.sh runs it again
# (`docker compose exec db sh /docker-entrypoint-initdb.d/app-role.sh`) on a volume made before the app had a
# role of its own, which also hands over what POSTGRES_USER owned there (api/core/db/hand_over.sql).
set -eu
: "${APP_DB_USER:?is not set}" "${APP_DB_PASSWORD:?is not set}" "${POSTGRES_USER:?is not set}"
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
    --set=role="$APP_DB_USER" --set=password="$APP_DB_PASSWORD" <<'SQL'
select format('create role %I', :'role') where not exists (select from pg_roles where rolname = :'role') \gexec
alter role :"role" login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'password';
select set_config('features_mart.app_role', :'role', false) \g /dev/null
\i /usr/local/share/features-mart/hand_over.sql
SQL
echo "app-role: $APP_DB_USER owns database ${POSTGRES_DB:-$POSTGRES_USER} (not a superuser)"
