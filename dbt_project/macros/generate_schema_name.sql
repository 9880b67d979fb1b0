{#
    Schema naming for write-audit-publish and for development.

    Every node gets its custom schema name (raw, staging, intermediate, marts) verbatim,
    followed by the suffix in DBT_SCHEMA_SUFFIX, so a build with DBT_SCHEMA_SUFFIX=__build
    lands in raw__build, staging__build, ... and can be swapped in after its tests pass.

    Target `default` (the API's): the suffix is empty unless set, and stored test failures
    always go to the unsuffixed audit schema.
    Target `dev` (plain dbt, scripts/dbt.sh): the suffix is `__dev` unless set, it is never
    empty, audit gets it too (audit__dev), and the API's own suffixes are refused, so a
    development build never touches what the API publishes or builds.
    Nodes without a custom schema fall back to target.schema (plus the suffix).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set suffix = env_var('DBT_SCHEMA_SUFFIX', '') | trim -%}
    {%- set dev = target.name == 'dev' -%}
    {%- if dev and not suffix -%}
        {%- set suffix = '__dev' -%}
    {%- endif -%}
    {%- if not modules.re.match('^[a-z0-9_]*$', suffix) -%}
        {{ exceptions.raise_compiler_error(
            "DBT_SCHEMA_SUFFIX must contain only lowercase letters, digits and underscores, got '"
            ~ suffix ~ "'"
        ) }}
    {%- endif -%}
    {%- if dev and modules.re.match('^__(build|r[0-9]+|retired_.*)$', suffix) -%}
        {{ exceptions.raise_compiler_error(
            "DBT_SCHEMA_SUFFIX '" ~ suffix ~ "' is one the API uses for its runs; target dev needs "
            ~ "another (default __dev)"
        ) }}
    {%- endif -%}
    {%- set base_schema = (custom_schema_name or target.schema) | trim -%}
    {%- if base_schema == 'audit' and not dev -%}
        {{ base_schema }}
    {%- else -%}
        {{ base_schema ~ suffix }}
    {%- endif -%}
{%- endmacro %}
