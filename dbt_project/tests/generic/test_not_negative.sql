{#
    Fails for every row whose column is below zero (nulls pass; add not_null for them).

    Failing rows: <key_column>, <column_name> and `failure`, e.g.
    experiment 5: experiment_run_time -3 is negative
#}
{% test not_negative(model, column_name, key_column, entity_label=none) %}

{%- set label = entity_label or key_column -%}

with

records as (

    select
        {{ key_column }} as key_value,
        {{ column_name }} as checked_value

    from {{ model }}

),

final as (

    select
        key_value as {{ key_column }},
        checked_value as {{ column_name }},
        {{ features_mart.format_message(
            "'" ~ label ~ " %s: " ~ column_name ~ " %s is negative'", 'key_value', 'checked_value'
        ) }} as failure

    from records
    where checked_value < 0

)

select * from final

{% endtest %}
