{#
    Schema naming for write-audit-publish.

    Every node gets its custom schema name (raw, staging, intermediate, marts) verbatim,
    followed by the suffix in DBT_SCHEMA_SUFFIX (empty by default), so a build with
    DBT_SCHEMA_SUFFIX=__b42 lands in raw__b42, staging__b42, ... and can be swapped in
    after its tests pass. Stored test failures always go to the unsuffixed audit schema.
    Nodes without a custom schema fall back to target.schema (plus the suffix).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set suffix = env_var('DBT_SCHEMA_SUFFIX', '') | trim -%}
    {%- if not modules.re.match('^[a-z0-9_]*$', suffix) -%}
        {{ exceptions.raise_compiler_error(
            "DBT_SCHEMA_SUFFIX must contain only lowercase letters, digits and underscores, got '"
            ~ suffix ~ "'"
        ) }}
    {%- endif -%}
    {%- set base_schema = (custom_schema_name or target.schema) | trim -%}
    {%- if base_schema == 'audit' -%}
        {{ base_schema }}
    {%- else -%}
        {{ base_schema ~ suffix }}
    {%- endif -%}
{%- endmacro %}
