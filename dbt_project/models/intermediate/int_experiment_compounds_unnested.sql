{#- SQL that differs between Postgres and Spark comes from macros/cross_db/ -#}
{%- set tokens = features_mart.split_list('experiment_compound_ids', ';') -%}
{%- set well_formed_list = '^\\s*[0-9]{1,18}\\s*(;\\s*[0-9]{1,18}\\s*)*$' -%}
{%- set token_digits = features_mart.regex_capture('compound_token', '^\\s*0*([0-9]{1,10})\\s*$') -%}

with

experiments as (

    select * from {{ ref('stg_lab__user_experiments') }}

),

lists as (

    select
        experiment_id,
        user_id,
        {{ tokens }} as compound_tokens,
        -- one regular expression per list: a well-formed list is cast as a whole (fast);
        -- any other list is null here and its tokens are read one by one below
        case
            when {{ features_mart.regex_matches('experiment_compound_ids', well_formed_list) }}
                then cast({{ tokens }} as {{ features_mart.type_bigint_array() }})
        end as compound_values

    from experiments

),

tokens as (

    select
        lists.experiment_id,
        lists.user_id,
        list_tokens.compound_token,
        list_tokens.compound_value,
        list_tokens.token_position

    from lists
    {{ features_mart.zip_arrays_rows(
        ['lists.compound_tokens', 'lists.compound_values'],
        'list_tokens', ['compound_token', 'compound_value'], 'token_position'
    ) }}

),

typed as (

    select
        experiment_id,
        user_id,
        compound_token,
        token_position,
        case
            when compound_value is not null
                then case when compound_value <= 2147483647 then cast(compound_value as integer) end
            -- a token of a malformed list: digits with optional blanks (leading zeros dropped)
            -- are an id if they fit an integer; nothing else is cast, so nothing here errors
            when {{ token_digits }} is not null
                and cast({{ token_digits }} as bigint) <= 2147483647
                then cast({{ token_digits }} as integer)
        end as compound_id

    from tokens

),

numbered as (

    select
        *,
        -- a compound listed twice in one experiment counts once: keep its first mention;
        -- unparseable tokens are kept once per distinct raw token
        row_number() over (
            partition by
                experiment_id,
                compound_id,
                case when compound_id is null then compound_token end
            order by token_position
        ) as mention_number

    from typed

),

final as (

    select
        experiment_id,
        user_id,
        compound_id,
        compound_token,
        token_position

    from numbered
    where mention_number = 1

)

select * from final
