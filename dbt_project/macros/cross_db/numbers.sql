{#
    Exact numbers. Postgres numeric is unbounded; Spark decimals have a fixed precision (at most
    38 digits) and scale, so on Spark run times are decimal(28, 9) and the mart's numeric
    columns decimal(38, 18): 18 decimal places, rounded half up (docs/spark.md).
#}

{# The type of input numbers (run times): numeric / decimal(28, 9). #}
{% macro type_numeric() -%}
    {{ return(adapter.dispatch('type_numeric', 'features_mart')()) }}
{%- endmacro %}

{% macro default__type_numeric() -%}
    numeric
{%- endmacro %}

{% macro spark__type_numeric() -%}
    decimal(28, 9)
{%- endmacro %}

{# The type of the mart's numeric columns: numeric / decimal(38, 18). #}
{% macro type_numeric_result() -%}
    {{ return(adapter.dispatch('type_numeric_result', 'features_mart')()) }}
{%- endmacro %}

{% macro default__type_numeric_result() -%}
    numeric
{%- endmacro %}

{% macro spark__type_numeric_result() -%}
    decimal(38, 18)
{%- endmacro %}

{# numerator / denominator (integer expressions) as an exact, unrounded (Postgres) decimal. #}
{% macro exact_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('exact_divide', 'features_mart')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__exact_divide(numerator, denominator) -%}
    cast({{ numerator }} as numeric) / cast({{ denominator }} as numeric)
{%- endmacro %}

{% macro spark__exact_divide(numerator, denominator) -%}
    {#- decimal(20, 0) / decimal(20, 0) is decimal(38, 18) in Spark -#}
    cast({{ numerator }} as decimal(20, 0)) / cast({{ denominator }} as decimal(20, 0))
{%- endmacro %}

{#
    `expression` as a mart number: Postgres casts to numeric and drops trailing zeros
    (trim_scale: 1.1000 -> 1.1); Spark has no trim_scale and casts to decimal(38, 18).
#}
{% macro mart_number(expression) -%}
    {{ return(adapter.dispatch('mart_number', 'features_mart')(expression)) }}
{%- endmacro %}

{% macro default__mart_number(expression) -%}
    trim_scale(cast({{ expression }} as numeric))
{%- endmacro %}

{% macro spark__mart_number(expression) -%}
    cast({{ expression }} as {{ features_mart.type_numeric_result() }})
{%- endmacro %}
