with

user_compound_counts as (

    select * from {{ ref('int_user_compound_counts') }}

),

with_top_count as (

    select
        user_id,
        compound_id,
        experiment_count,
        max(experiment_count) over (partition by user_id) as top_experiment_count

    from user_compound_counts

),

top_compounds as (

    select
        user_id,
        compound_id,
        experiment_count

    from with_top_count
    where experiment_count = top_experiment_count

),

final as (

    select
        user_id,
        -- ties go to the lowest compound id
        min(compound_id) as most_common_compound_id,
        max(experiment_count) as most_common_compound_experiments,
        {{ features_mart.sorted_int_array_agg('compound_id') }} as tied_compound_ids

    from top_compounds
    group by user_id

)

select * from final
