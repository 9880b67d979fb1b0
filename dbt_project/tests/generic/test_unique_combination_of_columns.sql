{#
    Fails for every combination of `combination_of_columns` that appears more than once.
    Model-level test (no column_name). Rows where any of the columns is null are compared
    like values (null = null), so duplicated nulls fail too; use a `where` config to skip them.

    Failing rows: the columns, n_records and `failure`, e.g.
    (experiment_id, compound_id) = (5, 1) appears 2 times
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set column_list = combination_of_columns | join(', ') -%}

with

grouped as (

    select
        {{ column_list }},
        count(*) as n_records

    from {{ model }}
    group by {{ column_list }}
    having count(*) > 1

),

final as (

    select
        {{ column_list }},
        n_records,
        {%- set rendered_values -%}
            concat_ws(
                ', ',
                {%- for column in combination_of_columns %}
                coalesce(cast({{ column }} as {{ features_mart.type_text() }}), 'null'){{ ',' if not loop.last }}
                {%- endfor %}
            )
        {%- endset %}
        {{ features_mart.format_message(
            "'(" ~ column_list ~ ") = (%s) appears %s times'", rendered_values, 'n_records'
        ) }} as failure

    from grouped

)

select * from final

{% endtest %}
