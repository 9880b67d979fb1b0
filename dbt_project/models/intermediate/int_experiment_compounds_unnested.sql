with

experiments as (

    select * from {{ ref('stg_lab__user_experiments') }}

),

tokens as (

    select
        experiments.experiment_id,
        experiments.user_id,
        list_tokens.compound_token,
        list_tokens.token_position

    from experiments
    {{ features_mart.split_list_rows(
        'experiments.experiment_compound_ids', ';', 'list_tokens', 'compound_token', 'token_position'
    ) }}

),

parsed as (

    select
        experiment_id,
        user_id,
        compound_token,
        token_position,
        -- the digits of a well-formed token (blanks and leading zeros dropped), else null;
        -- nothing is cast unless it is digits only, so a malformed list never errors here
        {{ features_mart.regex_capture('compound_token', '^\\s*0*([0-9]{1,10})\\s*$') }} as compound_digits

    from tokens

),

typed as (

    select
        experiment_id,
        user_id,
        compound_token,
        token_position,
        -- compound_digits is null or 1-10 digits, so this cast cannot fail
        case
            when cast(compound_digits as bigint) <= 2147483647
                then cast(compound_digits as integer)
        end as compound_id

    from parsed

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
