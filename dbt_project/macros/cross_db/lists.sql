{#
    Lists and arrays: where Postgres and Spark SQL differ, each macro has a default (Postgres)
    and a spark__ version. Models call them as features_mart.<name>(...).
#}

{#
    The join clause that turns a `separator`-separated text column into one row per token,
    with the token's 1-based position: adds `alias.token_column` and `alias.position_column`.
    An empty or null list yields no rows on both engines (Spark's split returns one '' for '').
    Place it right after the FROM item that holds `list_column`.
#}
{% macro split_list_rows(list_column, separator, alias, token_column, position_column) -%}
    {{ return(adapter.dispatch('split_list_rows', 'features_mart')(
        list_column, separator, alias, token_column, position_column)) }}
{%- endmacro %}

{% macro default__split_list_rows(list_column, separator, alias, token_column, position_column) -%}
    cross join
        lateral unnest(string_to_array({{ list_column }}, {{ features_mart.string_literal(separator) }}))
        with ordinality as {{ alias }} ({{ token_column }}, {{ position_column }})
{%- endmacro %}

{% macro spark__split_list_rows(list_column, separator, alias, token_column, position_column) -%}
    {#- split() takes a regex: escape the separator; nullif: no row for an empty list -#}
    lateral view inline(
        transform(
            split(nullif({{ list_column }}, ''), {{ features_mart.string_literal(modules.re.escape(separator)) }}),
            (list_token, list_index) -> struct(list_token, list_index + 1)
        )
    ) {{ alias }} as {{ token_column }}, {{ position_column }}
{%- endmacro %}

{# An array of the non-null values of an integer column, ascending (an aggregate). #}
{% macro sorted_int_array_agg(column) -%}
    {{ return(adapter.dispatch('sorted_int_array_agg', 'features_mart')(column)) }}
{%- endmacro %}

{% macro default__sorted_int_array_agg(column) -%}
    array_agg({{ column }} order by {{ column }})
{%- endmacro %}

{% macro spark__sorted_int_array_agg(column) -%}
    array_sort(collect_list({{ column }}))
{%- endmacro %}

{# The type of an integer array column: integer[] on Postgres, array<int> on Spark. #}
{% macro type_int_array() -%}
    {{ return(adapter.dispatch('type_int_array', 'features_mart')()) }}
{%- endmacro %}

{% macro default__type_int_array() -%}
    integer[]
{%- endmacro %}

{% macro spark__type_int_array() -%}
    array<int>
{%- endmacro %}

{# An empty integer array literal. #}
{% macro empty_int_array() -%}
    {{ return(adapter.dispatch('empty_int_array', 'features_mart')()) }}
{%- endmacro %}

{% macro default__empty_int_array() -%}
    cast(array[] as integer[])
{%- endmacro %}

{% macro spark__empty_int_array() -%}
    cast(array() as array<int>)
{%- endmacro %}

{#
    The largest number in a `separator`-separated list of digit tokens (blanks around them
    allowed), compared against integer limits: numeric on Postgres, double on Spark (exact
    up to 2^53, so exact around the integer range).
#}
{% macro max_list_number(list_column, separator) -%}
    {{ return(adapter.dispatch('max_list_number', 'features_mart')(list_column, separator)) }}
{%- endmacro %}

{% macro default__max_list_number(list_column, separator) -%}
    (
        select max(cast(substring(token from '[0-9]+') as numeric))
        from unnest(string_to_array({{ list_column }}, {{ features_mart.string_literal(separator) }})) as token
    )
{%- endmacro %}

{% macro spark__max_list_number(list_column, separator) -%}
    array_max(
        transform(
            split({{ list_column }}, {{ features_mart.string_literal(modules.re.escape(separator)) }}),
            list_token -> cast(regexp_extract(list_token, '[0-9]+', 0) as double)
        )
    )
{%- endmacro %}
