#!/bin/sh
# The role the app logs in as (APP_DB_USER, password APP_DB_PASSWORD): not a superuser, the owner of POSTGRES_DB
# and of everything in it (docs/security.md). The postgres image runs this once, on a new volume, as
# POSTGRES_USER (the superuser, for setting up only). It is idempotent: scripts/docker-up.sh runs it again on a
# volume whose database the role does not own yet (made before the app had a role of its own), which also hands
# over what POSTGRES_USER owned there (api/core/db/hand_over.sql).
# The password reaches psql through its environment (\getenv), never its command line, and a failing statement
# is not written to the server's log.
set -eu
: "${APP_DB_USER:?is not set}" "${APP_DB_PASSWORD:?is not set}" "${POSTGRES_USER:?is not set}"
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" <<'SQL'
\getenv role APP_DB_USER
\getenv password APP_DB_PASSWORD
set log_min_error_statement = panic;
select format('create role %I', :'role') where not exists (select from pg_roles where rolname = :'role') \gexec
alter role :"role" login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password :'password';
reset log_min_error_statement;
select set_config('features_mart.app_role', :'role', false) \g /dev/null
\i /usr/local/share/features-mart/hand_over.sql
SQL
echo "app-role: $APP_DB_USER owns database ${POSTGRES_DB:-$POSTGRES_USER} (not a superuser)"
