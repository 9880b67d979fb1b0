with

experiments as (

    select * from {{ ref('stg_lab__user_experiments') }}

),

lists as (

    select
        experiment_id,
        user_id,
        string_to_array(experiment_compound_ids, ';') as compound_tokens,
        -- one regular expression per list: a well-formed list is cast as a whole (fast);
        -- any other list is null here and its tokens are read one by one below
        case
            when experiment_compound_ids ~ '^\s*[0-9]{1,18}\s*(;\s*[0-9]{1,18}\s*)*$'
                then cast(string_to_array(experiment_compound_ids, ';') as bigint[])
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
    cross join
        lateral unnest(lists.compound_tokens, lists.compound_values)
        with ordinality as list_tokens (compound_token, compound_value, token_position)

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
            when substring(compound_token from '^\s*0*([0-9]{1,10})\s*$') is not null
                and cast(substring(compound_token from '^\s*0*([0-9]{1,10})\s*$') as bigint) <= 2147483647
                then cast(substring(compound_token from '^\s*0*([0-9]{1,10})\s*$') as integer)
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
