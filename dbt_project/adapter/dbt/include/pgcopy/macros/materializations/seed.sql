{#
    Seeds on Postgres, loaded with COPY (profile type pgcopy).

    The same steps as dbt's own seed materialization (create the table from the declared
    column_types, or truncate it; one transaction; grants, docs, indexes, hooks), except
    that the rows go in with `adapter.copy_csv` (COPY ... FROM STDIN, streamed) instead of
    agate parsing the file and Jinja rendering INSERT batches. The seed result still
    carries an agate table (the header, no rows), as dbt's seed task expects.

    Declare column_types for every column (models/staging/_lab__seeds.yml): no rows are
    read for type inference, so an undeclared column is text. A failed COPY names the
    line and column, and rolls back with the old rows kept.

    The result is recorded with store_raw_result, not dbt's noop_statement: noop_statement
    would write the node's runtime SQL to target/run/<original_file_path>, and with an
    absolute DBT_SEEDS_DIR that path is the CSV itself (dbt-core issue #7373).
#}
{% materialization seed, adapter='pgcopy' %}

    {%- set identifier = model['alias'] -%}
    {%- set full_refresh_mode = should_full_refresh() -%}
    {%- set old_relation = adapter.get_relation(database=database, schema=schema, identifier=identifier) -%}
    {%- set exists_as_table = (old_relation is not none and old_relation.is_table) -%}
    {%- set exists_as_view = (old_relation is not none and old_relation.is_view) -%}
    {%- set grant_config = config.get('grants') -%}

    {%- set csv_path = adapter.seed_file(model['root_path'], model['original_file_path']) -%}
    {%- set agate_table = adapter.csv_header(csv_path) -%}
    {%- do store_result('agate_table', response='OK', agate_table=agate_table) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% if exists_as_view %}
        {{ exceptions.raise_compiler_error("Cannot seed to '{}', it is a view".format(old_relation.render())) }}
    {% elif exists_as_table %}
        {% do reset_csv_table(model, full_refresh_mode, old_relation, agate_table) %}
    {% else %}
        {% do create_csv_table(model, agate_table) %}
    {% endif %}

    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set rows_affected = adapter.copy_csv(target_relation, csv_path, agate_table.column_names) -%}
    {% call statement('analyze') %}
        analyze {{ target_relation }}
    {% endcall %}

    {% do store_raw_result('main', message='COPY ' ~ rows_affected, code='COPY', rows_affected=rows_affected) %}

    {% set should_revoke = should_revoke(old_relation, full_refresh_mode) %}
    {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
    {% do persist_docs(target_relation, model) %}
    {% if full_refresh_mode or not exists_as_table %}
        {% do create_indexes(target_relation) %}
    {% endif %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
