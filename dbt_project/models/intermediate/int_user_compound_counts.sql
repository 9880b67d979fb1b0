with

experiment_compounds as (

    select * from {{ ref('int_experiment_compounds_unnested') }}

),

valid_compounds as (

    select
        user_id,
        compound_id,
        experiment_id

    from experiment_compounds
    where compound_id is not null

),

final as (

    select
        user_id,
        compound_id,
        -- distinct: a compound counts once per experiment however often it is listed
        cast(count(distinct experiment_id) as integer) as experiment_count

    from valid_compounds
    group by
        user_id,
        compound_id

)

select * from final
