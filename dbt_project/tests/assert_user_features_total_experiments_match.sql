-- Every experiment is counted for exactly one user in the mart: the sum of
-- total_experiments equals the number of experiments. Fails when experiments belong to
-- user ids missing from the users seed (they cannot appear in the mart).
with

user_features as (

    select * from {{ ref('user_features') }}

),

experiments as (

    select * from {{ ref('stg_lab__user_experiments') }}

),

mart_total as (

    select coalesce(sum(total_experiments), 0) as mart_experiments
    from user_features

),

experiments_total as (

    select count(*) as all_experiments
    from experiments

),

final as (

    select
        mart_total.mart_experiments,
        experiments_total.all_experiments,
        {{ features_mart.format_message(
            "'user_features counts %s experiments but there are %s experiments"
            ~ " (experiments of unknown users are missing from the mart)'",
            'mart_total.mart_experiments',
            'experiments_total.all_experiments'
        ) }} as failure

    from mart_total
    cross join experiments_total
    where mart_total.mart_experiments != experiments_total.all_experiments

)

select * from final
