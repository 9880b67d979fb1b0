{#
    Lists and arrays: where Postgres and Spark SQL differ, each macro has a default (Postgres)
    and a spark__ version. Models call them as features_mart.<name>(...).
#}

{#
    A `separator`-separated text column as an array of its tokens (text). An empty list is an
    empty array on Postgres and null on Spark (whose split returns one '' for ''): either way
    it yields no rows below. Null stays null.
#}
{% macro split_list(list_column, separator) -%}
    {{ return(adapter.dispatch('split_list', 'features_mart')(list_column, separator)) }}
{%- endmacro %}

{% macro default__split_list(list_column, separator) -%}
    string_to_array({{ list_column }}, {{ features_mart.string_literal(separator) }})
{%- endmacro %}

{% macro spark__split_list(list_column, separator) -%}
    {#- split() takes a regex: escape the separator -#}
    split(nullif({{ list_column }}, ''), {{ features_mart.string_literal(modules.re.escape(separator)) }})
{%- endmacro %}

{#
    The join clause that turns arrays of equal length into one row per position: adds
    `alias.<column>` for each array (the elements at that position; null where an array is
    null) and `alias.<position_column>` (1-based). A null or empty first array yields no rows.
    Place it right after the FROM item that holds the arrays.
#}
{% macro zip_arrays_rows(arrays, alias, columns, position_column) -%}
    {{ return(adapter.dispatch('zip_arrays_rows', 'features_mart')(arrays, alias, columns, position_column)) }}
{%- endmacro %}

{% macro default__zip_arrays_rows(arrays, alias, columns, position_column) -%}
    cross join
        lateral unnest({{ arrays | join(', ') }})
        with ordinality as {{ alias }} ({{ columns | join(', ') }}, {{ position_column }})
{%- endmacro %}

{% macro spark__zip_arrays_rows(arrays, alias, columns, position_column) -%}
    lateral view inline(
        transform(
            {{ arrays[0] }},
            (zip_element, zip_index) -> struct(
                zip_element
                {%- for other in arrays[1:] %}, {{ other }}[zip_index]{% endfor %},
                zip_index + 1
            )
        )
    ) {{ alias }} as {{ columns | join(', ') }}, {{ position_column }}
{%- endmacro %}

{# The type of a bigint array: bigint[] on Postgres, array<bigint> on Spark. #}
{% macro type_bigint_array() -%}
    {{ return(adapter.dispatch('type_bigint_array', 'features_mart')()) }}
{%- endmacro %}

{% macro default__type_bigint_array() -%}
    bigint[]
{%- endmacro %}

{% macro spark__type_bigint_array() -%}
    array<bigint>
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
