with

users as (

    select * from {{ ref('users') }}

),

final as (

    select
        cast(user_id as integer) as user_id,
        trim(name) as name,
        trim(email) as email,
        cast(signup_date as date) as signup_date

    from users

)

select * from final
