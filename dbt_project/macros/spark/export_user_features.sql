{#
    `dbt run-operation export_user_features --args '{path: /abs/dir}'` (DBT_TARGET=spark):
    Spark writes the tested mart as headerless CSV part files into `path` (replacing it), for
    Postgres to COPY (api/core/mart/spark.py). Nothing passes through the dbt process: the
    executors write the files. The mart's count(*) is then logged ("exported N rows of ..."):
    the transfer step loads nothing unless the part files it finds hold exactly N rows.

    The columns are those of the mart's contract, in order, written so that Postgres reads
    them back as the same values:
    - decimals as plain text with trailing zeros dropped (1.1, not 1.100000000000000000 or
      1.1E+0), as Postgres' trim_scale writes them;
    - tied_compound_ids as a Postgres array literal ({1,2}, {} when empty);
    - NULL as an empty field, an empty string as "" (Postgres COPY csv reads them back so);
    - quotes doubled (RFC 4180), values with quotes, commas or newlines quoted.
#}
{% macro export_user_features(path) %}
  {%- if not path or not path.startswith('/') -%}
    {{ exceptions.raise_compiler_error("export_user_features needs an absolute path, got '" ~ path ~ "'") }}
  {%- endif -%}
  {% set sql %}
    insert overwrite directory {{ features_mart.string_literal('file://' ~ path) }}
    using csv
    options (
      header 'false',
      quote '"',
      escape '"',
      escapeQuotes 'true',
      nullValue '',
      emptyValue '""',
      ignoreLeadingWhiteSpace 'false',
      ignoreTrailingWhiteSpace 'false',
      encoding 'UTF-8'
    )
    select
      user_id,
      name,
      email,
      signup_date,
      total_experiments,
      {{ plain_decimal('experiment_share') }},
      {{ plain_decimal('avg_experiments_per_user') }},
      {{ plain_decimal('avg_experiment_run_time') }},
      {{ plain_decimal('total_experiment_run_time') }},
      most_common_compound_id,
      most_common_compound_name,
      most_common_compound_structure,
      most_common_compound_experiments,
      concat('{', array_join(tied_compound_ids, ','), '}')
    from {{ ref('user_features') }}
  {% endset %}
  {% do run_query(sql) %}
  {%- set rows = run_query('select count(*) from ' ~ ref('user_features')).columns[0].values()[0] | int -%}
  {{ log("exported " ~ rows ~ " rows of " ~ ref('user_features') ~ " as CSV to " ~ path, info=true) }}
{% endmacro %}

{#
    A decimal(38, 18) as plain text without trailing zeros: 0.5, 12, 0 (Spark's own text is 0E-18).
    format_number formats the exact decimal (18 places: no rounding) with a ',' every 3 digits.
#}
{% macro plain_decimal(column) -%}
  regexp_replace(
    regexp_replace(replace(format_number({{ column }}, 18), ',', ''), '0+$', ''), '\\.$', ''
  ) as {{ column }}
{%- endmacro %}
