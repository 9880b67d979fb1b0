{#
    Fails for every row whose column is not a well-formed list of integer ids joined by
    `separator` (default ';'): each token is digits with optional surrounding blanks, no
    empty tokens, no empty or null list, and every id fits in a Postgres integer.
    Duplicate ids (`1;1;2`) are allowed.

    Failing rows: <key_column>, <column_name> (the bad value) and `failure`, e.g.
    experiment 5: experiment_compound_ids '1:3' is not a ';'-separated list of compound ids
#}
{% test is_separated_id_list(
    model,
    column_name,
    key_column,
    separator=';',
    entity_label=none,
    item_label='ids'
) %}

{%- set label = entity_label or key_column -%}
{%- set sep_regex = modules.re.escape(separator) -%}
{%- set token_regex = '\\s*[0-9]+\\s*' -%}
{%- set list_regex = '^' ~ token_regex ~ '(' ~ sep_regex ~ token_regex ~ ')*$' -%}

with

records as (

    select
        {{ key_column }} as key_value,
        {{ column_name }} as list_value

    from {{ model }}

),

checked as (

    select
        key_value,
        list_value,
        case
            when list_value is null then 'is missing'
            when {{ features_mart.regex_not_matches('list_value', list_regex) }}
                then {{ features_mart.format_message(
                    "'%s is not a %s-separated list of " ~ item_label ~ "'",
                    features_mart.quote_literal('list_value'),
                    features_mart.quote_literal(features_mart.string_literal(separator))
                ) }}
            -- only a list with an id of 10+ digits can exceed the range: look into those alone
            when {{ features_mart.regex_matches('list_value', '[0-9]{10}') }}
                and {{ features_mart.max_list_number('list_value', separator) }} > 2147483647
                then {{ features_mart.format_message(
                    "'%s contains an id above the integer range (2147483647)'",
                    features_mart.quote_literal('list_value')
                ) }}
        end as problem

    from records

),

final as (

    select
        key_value as {{ key_column }},
        list_value as {{ column_name }},
        {{ features_mart.format_message(
            "'" ~ label ~ " %s: " ~ column_name ~ " %s'", 'key_value', 'problem'
        ) }} as failure

    from checked
    where problem is not null

)

select * from final

{% endtest %}
