-- Hands the current database, and every schema, table, view, sequence and function the current user (a
-- superuser) owns in its own schemas, to the role named by the setting `features_mart.app_role`. Used by
-- api/core/db/roles.py (the embedded server) and by docker/postgres-init/app-role.sh (the Compose database).
-- Not `reassign owned`: Postgres refuses that for its bootstrap superuser. Sequences that belong to a column
-- move with their table; indexes, row types and TOAST tables with theirs.
do $hand_over$
declare
    target text := current_setting('features_mart.app_role');
    obj record;
begin
    execute format('alter database %I owner to %I', current_database(), target);
    for obj in
        select n.nspname from pg_namespace n
        where n.nspowner = current_user::regrole and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    loop
        execute format('alter schema %I owner to %I', obj.nspname, target);
    end loop;
    for obj in
        select
            c.oid::regclass as rel,
            case c.relkind
                when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence'
                when 'f' then 'foreign table' else 'table'
            end as kind
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relowner = current_user::regrole and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
            and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
            and not exists (
                select from pg_depend d
                where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
                    and d.refclassid = 'pg_class'::regclass
            )
    loop
        execute format('alter %s %s owner to %I', obj.kind, obj.rel, target);
    end loop;
    for obj in
        select p.oid::regprocedure as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.proowner = current_user::regrole and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
    loop
        execute format('alter routine %s owner to %I', obj.fn, target);
    end loop;
end
$hand_over$;
