{#
    Override of dbt's global `noop_statement` (dbt-core 1.11, macros/etc/statement.sql),
    identical except that it does not write the runtime SQL of seeds to target/run.

    Why: the seeds are read from DBT_SEEDS_DIR, which may be an absolute path. dbt writes a
    node's runtime SQL to os.path.join(target_path, 'run', package, original_file_path); for
    an absolute original_file_path that join is the CSV itself, so `dbt seed` overwrote the
    input CSV with its INSERT statement (dbt-core issue #7373, still open in 1.11.16). Seeds
    are the only nodes materialized through noop_statement('main'), and their runtime SQL
    (an INSERT with placeholders) is of no debugging value, so skipping the write is safe.
#}
{% macro noop_statement(name=None, message=None, code=None, rows_affected=None, res=None) -%}
    {%- set sql = caller() -%}

    {%- if name == 'main' and model.resource_type != 'seed' -%}
        {{ log('Writing runtime SQL for node "{}"'.format(model['unique_id'])) }}
        {{ write(sql) }}
    {%- endif -%}

    {%- if name is not none -%}
        {{ store_raw_result(name, message=message, code=code, rows_affected=rows_affected, agate_table=res) }}
    {%- endif -%}

{%- endmacro %}
