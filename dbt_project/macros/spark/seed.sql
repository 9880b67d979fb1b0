{#
    Seeds on Spark: Spark's own CSV reader loads the (validated, normalised) file, then a
    managed table is written from it. Replaces dbt-spark's seed materialization, which reads
    the file into Python (agate) and INSERTs it row by row, turning empty cells into the
    string 'None' (dbt-adapters#487).

    - The schema is explicit: the seed's `column_types` (Postgres names in
      models/staging/_lab__seeds.yml) translated by spark_seed_type(). Spark checks the
      file's header against it (enforceSchema false) and fails on any malformed value
      (FAILFAST) instead of loading a null.
    - An empty unquoted cell is NULL, as on Postgres; quoting follows RFC 4180 (doubled
      quotes, newlines inside quotes), as written by the validator, api/core/seeds/.
    - The path is the local file (file://): on a cluster DBT_SEEDS_DIR must be on a mount
      every executor sees (docs/spark.md).
    - Safe to kill and retry: the data is written into `<seed>__seeding` first, and the old
      table is dropped (and the new one renamed in) only after that write has succeeded, so a
      file that cannot be read, a cancel or a kill leaves the old table as it was. What a
      killed write leaves (a registered `__seeding` table here; its unregistered folder and
      `_temporary` folders on disk, removed by api/core/dbt/spark_warehouse.py before each
      seeding command) never blocks the next run.
    - The seed's result table is a sample of at most 10 loaded rows (`dbt seed --show`);
      its row count is counted by Spark.
#}
{% materialization seed, adapter='spark' %}

  {%- set identifier = model['alias'] -%}
  {%- set old_relation = adapter.get_relation(database=database, schema=schema, identifier=identifier) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- if old_relation is not none and old_relation.is_view -%}
    {{ exceptions.raise_compiler_error("Cannot seed to '{}', it is a view".format(old_relation.render())) }}
  {%- endif -%}

  {%- set column_types = model['config'].get('column_types', {}) -%}
  {%- if not column_types -%}
    {{ exceptions.raise_compiler_error(
        "seed " ~ identifier ~ ": the Spark seed materialization needs column_types for every column, "
        ~ "in the order of the CSV header"
    ) }}
  {%- endif -%}
  {%- set csv_path = model.original_file_path if model.original_file_path.startswith('/')
      else model.root_path ~ '/' ~ model.original_file_path -%}
  {%- set csv_view = identifier ~ '__csv' -%}
  {%- set staging_relation = this.incorporate(path={'identifier': identifier ~ '__seeding'}, type='table') -%}

  {{ run_hooks(pre_hooks) }}

  {% call statement('read_csv') -%}
    create or replace temporary view {{ csv_view }} (
      {%- for column_name, column_type in column_types.items() %}
        {{ column_name }} {{ spark_seed_type(column_type) }}{{ ',' if not loop.last }}
      {%- endfor %}
    )
    using csv
    options (
      path {{ features_mart.string_literal('file://' ~ csv_path) }},
      header 'true',
      enforceSchema 'false',
      mode 'FAILFAST',
      multiLine 'true',
      quote '"',
      escape '"',
      encoding 'UTF-8'
    )
  {%- endcall %}

  {% call statement('drop_leftover') -%}
    drop table if exists {{ staging_relation }}
  {%- endcall %}
  {% call statement('write_table') -%}
    create table {{ staging_relation }}
    using {{ config.get('file_format') or 'parquet' }}
    as select * from {{ csv_view }}
  {%- endcall %}
  {% call statement('drop_csv_view') -%}
    drop view if exists {{ csv_view }}
  {%- endcall %}
  {#- the new data is in: only now does the old table go -#}
  {%- if old_relation is not none -%}
    {{ adapter.drop_relation(old_relation) }}
  {%- endif -%}
  {% call statement('swap_in') -%}
    alter table {{ staging_relation }} rename to {{ target_relation }}
  {%- endcall %}

  {%- set rows_affected = run_query('select count(*) from ' ~ target_relation).columns[0].values()[0] | int -%}
  {%- do store_result(
      'agate_table', response='OK', agate_table=run_query('select * from ' ~ target_relation ~ ' limit 10')
  ) -%}
  {#- store_raw_result, not noop_statement: that would write the runtime SQL over the CSV (dbt-core #7373) -#}
  {% do store_raw_result('main', message='CREATE ' ~ rows_affected, code='CREATE', rows_affected=rows_affected) %}

  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks) }}

  {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}


{# A seed column type given with Postgres names, as the Spark type. #}
{% macro spark_seed_type(column_type) -%}
  {%- set name = column_type | trim | lower -%}
  {%- if name in ('text', 'varchar', 'character varying') -%}
    string
  {%- elif name in ('numeric', 'decimal') -%}
    {{ features_mart.type_numeric() }}
  {%- elif name == 'integer' -%}
    int
  {%- else -%}
    {{ column_type }}
  {%- endif -%}
{%- endmacro %}
