{#
    Like dbt's built-in `relationships` test (every non-null value of column_name exists in
    `to`.`field`), but the failing rows say which record holds the unknown value.

    Failing rows: <key_column>, <column_name> and `failure`, e.g.
    experiment 9: user_id 42 is not a known user
#}
{% test relationships_with_context(
    model,
    column_name,
    to,
    field,
    key_column,
    entity_label=none,
    target_label=none
) %}

{%- set label = entity_label or key_column -%}
{%- set target_description = target_label or (field ~ ' in ' ~ to) -%}

with

child as (

    select
        {{ key_column }} as key_value,
        {{ column_name }} as reference_value

    from {{ model }}
    where {{ column_name }} is not null

),

parent as (

    select {{ field }} as reference_value
    from {{ to }}

),

final as (

    select
        child.key_value as {{ key_column }},
        child.reference_value as {{ column_name }},
        {{ features_mart.format_message(
            "'" ~ label ~ " %s: " ~ column_name ~ " %s is not a known " ~ target_description ~ "'",
            'child.key_value',
            'child.reference_value'
        ) }} as failure

    from child
    left join parent
        on child.reference_value = parent.reference_value
    where parent.reference_value is null

)

select * from final

{% endtest %}
