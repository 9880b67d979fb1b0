with

experiments as (

    select * from {{ ref('stg_lab__user_experiments') }}

),

final as (

    select
        user_id,
        cast(count(*) as integer) as total_experiments,
        avg(experiment_run_time) as avg_experiment_run_time,
        sum(experiment_run_time) as total_experiment_run_time

    from experiments
    group by user_id

)

select * from final
