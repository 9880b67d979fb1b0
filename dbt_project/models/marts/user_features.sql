with

users as (

    select * from {{ ref('stg_lab__users') }}

),

experiments as (

    select * from {{ ref('stg_lab__user_experiments') }}

),

compounds as (

    select * from {{ ref('stg_lab__compounds') }}

),

users_experiments as (

    select * from {{ ref('int_users_experiments_aggregated') }}

),

users_most_common_compounds as (

    select * from {{ ref('int_users_most_common_compounds') }}

),

experiment_totals as (

    select count(*) as all_experiments
    from experiments

),

user_totals as (

    select count(*) as all_users
    from users

),

joined as (

    select
        users.user_id,
        users.name,
        users.email,
        users.signup_date,
        coalesce(users_experiments.total_experiments, 0) as total_experiments,
        experiment_totals.all_experiments,
        user_totals.all_users,
        users_experiments.avg_experiment_run_time,
        coalesce(users_experiments.total_experiment_run_time, 0) as total_experiment_run_time,
        users_most_common_compounds.most_common_compound_id,
        compounds.compound_name as most_common_compound_name,
        compounds.compound_structure as most_common_compound_structure,
        coalesce(users_most_common_compounds.most_common_compound_experiments, 0)
            as most_common_compound_experiments,
        coalesce(
            users_most_common_compounds.tied_compound_ids, {{ features_mart.empty_int_array() }}
        ) as tied_compound_ids

    from users
    cross join experiment_totals
    cross join user_totals
    left join users_experiments
        on users.user_id = users_experiments.user_id
    left join users_most_common_compounds
        on users.user_id = users_most_common_compounds.user_id
    left join compounds
        on users_most_common_compounds.most_common_compound_id = compounds.compound_id

),

final as (

    select
        cast(user_id as integer) as user_id,
        cast(name as {{ features_mart.type_text() }}) as name,
        cast(email as {{ features_mart.type_text() }}) as email,
        cast(signup_date as date) as signup_date,
        cast(total_experiments as integer) as total_experiments,
        -- unrounded numeric divisions; on Postgres trailing zeros are dropped (1.1000 -> 1.1),
        -- on Spark they are decimal(38, 18) (see macros/cross_db/numbers.sql)
        {{ features_mart.mart_number(
            "case when all_experiments = 0 then 0 else "
            ~ features_mart.exact_divide('total_experiments', 'all_experiments') ~ " end"
        ) }} as experiment_share,
        {{ features_mart.mart_number(
            features_mart.exact_divide('all_experiments', 'nullif(all_users, 0)')
        ) }} as avg_experiments_per_user,
        {{ features_mart.mart_number('avg_experiment_run_time') }} as avg_experiment_run_time,
        {{ features_mart.mart_number('total_experiment_run_time') }} as total_experiment_run_time,
        cast(most_common_compound_id as integer) as most_common_compound_id,
        cast(most_common_compound_name as {{ features_mart.type_text() }}) as most_common_compound_name,
        cast(most_common_compound_structure as {{ features_mart.type_text() }}) as most_common_compound_structure,
        cast(most_common_compound_experiments as integer) as most_common_compound_experiments,
        cast(tied_compound_ids as {{ features_mart.type_int_array() }}) as tied_compound_ids

    from joined

)

select * from final
