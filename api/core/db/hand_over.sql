-- Hands the current database, and every schema, table, view, sequence, type and function the current user (a
-- superuser) owns in its own schemas, to the role named by the setting `features_mart.app_role`. Idempotent.
-- Used by api/core/db/roles.py (the embedded server) and by docker/postgres-init/app-role.sh (the Compose
-- database). Not `reassign owned`: Postgres refuses that for its bootstrap superuser. Left alone: what belongs
-- to an extension, a sequence that belongs to a column (it moves with its table), and what moves with its
-- owner anyway (indexes, TOAST tables, row and array types).
do $hand_over$
declare
    target text := current_setting('features_mart.app_role');
    -- the database's own schemas (not pg_catalog, pg_toast, information_schema...)
    own oid[] := array(select oid from pg_namespace where nspname <> 'information_schema' and nspname !~ '^pg_');
    -- what belongs to an extension, as '<catalog>/<oid>'
    members text[] := array(select d.classid::regclass::text || '/' || d.objid from pg_depend d where d.deptype = 'e');
    obj record;
begin
    execute format('alter database %I owner to %I', current_database(), target);
    for obj in
        select n.nspname from pg_namespace n
        where n.nspowner = current_user::regrole and n.oid = any(own)
            and not ('pg_namespace/' || n.oid) = any(members)
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
        from pg_class c
        where c.relowner = current_user::regrole and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
            and c.relnamespace = any(own)
            and not ('pg_class/' || c.oid) = any(members)
            and not (c.relkind = 'S' and exists (
                select from pg_depend d
                where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')
                    and d.refclassid = 'pg_class'::regclass
            ))
    loop
        execute format('alter %s %s owner to %I', obj.kind, obj.rel, target);
    end loop;
    for obj in
        select t.oid::regtype as typ, case t.typtype when 'd' then 'domain' else 'type' end as kind
        from pg_type t
        where t.typowner = current_user::regrole and t.typnamespace = any(own)
            and (t.typtype in ('e', 'd', 'r', 'm') or (t.typtype = 'c' and t.typrelid <> 0
                and (select c.relkind from pg_class c where c.oid = t.typrelid) = 'c'))
            and not ('pg_type/' || t.oid) = any(members)
    loop
        execute format('alter %s %s owner to %I', obj.kind, obj.typ, target);
    end loop;
    for obj in
        select p.oid::regprocedure as fn from pg_proc p
        where p.proowner = current_user::regrole and p.pronamespace = any(own)
            and not ('pg_proc/' || p.oid) = any(members)
    loop
        execute format('alter routine %s owner to %I', obj.fn, target);
    end loop;
end
$hand_over$;
