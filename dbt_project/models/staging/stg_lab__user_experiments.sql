with

user_experiments as (

    select * from {{ ref('user_experiments') }}

),

final as (

    select
        cast(experiment_id as integer) as experiment_id,
        cast(user_id as integer) as user_id,
        -- kept as raw text: parsing happens in int_experiment_compounds_unnested, which
        -- never fails on a malformed list (the data tests report it instead)
        trim(experiment_compound_ids) as experiment_compound_ids,
        cast(experiment_run_time as {{ features_mart.type_numeric() }}) as experiment_run_time

    from user_experiments

)

select * from final
