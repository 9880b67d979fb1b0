with

compounds as (

    select * from {{ ref('compounds') }}

),

final as (

    select
        cast(compound_id as integer) as compound_id,
        trim(compound_name) as compound_name,
        trim(compound_structure) as compound_structure

    from compounds

)

select * from final
