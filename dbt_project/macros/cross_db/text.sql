{#
    Text, regular expressions and messages: Postgres (default) and Spark SQL versions.
#}

{# `value` (a Jinja string) as an SQL string literal; Spark literals also treat \ as an escape. #}
{% macro string_literal(value) -%}
    {{ return(adapter.dispatch('string_literal', 'features_mart')(value)) }}
{%- endmacro %}

{% macro default__string_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__string_literal(value) -%}
    '{{ value | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{# The text type: text on Postgres, string on Spark. #}
{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'features_mart')()) }}
{%- endmacro %}

{% macro default__type_text() -%}
    text
{%- endmacro %}

{% macro spark__type_text() -%}
    string
{%- endmacro %}

{# The first capture group of `pattern` (a Jinja string, POSIX/Java regex) in `expression`, else null. #}
{% macro regex_capture(expression, pattern) -%}
    {{ return(adapter.dispatch('regex_capture', 'features_mart')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regex_capture(expression, pattern) -%}
    substring({{ expression }} from {{ features_mart.string_literal(pattern) }})
{%- endmacro %}

{% macro spark__regex_capture(expression, pattern) -%}
    {#- regexp_extract returns '' when nothing matches; the patterns we use never capture '' -#}
    nullif(regexp_extract({{ expression }}, {{ features_mart.string_literal(pattern) }}, 1), '')
{%- endmacro %}

{# True when `expression` matches `pattern` (a Jinja string) somewhere; null for null. #}
{% macro regex_matches(expression, pattern) -%}
    {{ return(adapter.dispatch('regex_matches', 'features_mart')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regex_matches(expression, pattern) -%}
    {{ expression }} ~ {{ features_mart.string_literal(pattern) }}
{%- endmacro %}

{% macro spark__regex_matches(expression, pattern) -%}
    {{ expression }} rlike {{ features_mart.string_literal(pattern) }}
{%- endmacro %}

{# True when `expression` does not match `pattern` (a Jinja string) anywhere; null for null. #}
{% macro regex_not_matches(expression, pattern) -%}
    {{ return(adapter.dispatch('regex_not_matches', 'features_mart')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regex_not_matches(expression, pattern) -%}
    {{ expression }} !~ {{ features_mart.string_literal(pattern) }}
{%- endmacro %}

{% macro spark__regex_not_matches(expression, pattern) -%}
    not ({{ expression }} rlike {{ features_mart.string_literal(pattern) }})
{%- endmacro %}

{# `expression` as a quoted SQL literal for messages: 'it''s' (Postgres quote_literal). #}
{% macro quote_literal(expression) -%}
    {{ return(adapter.dispatch('quote_literal', 'features_mart')(expression)) }}
{%- endmacro %}

{% macro default__quote_literal(expression) -%}
    quote_literal({{ expression }})
{%- endmacro %}

{% macro spark__quote_literal(expression) -%}
    concat('\'', replace({{ expression }}, '\'', '\'\''), '\'')
{%- endmacro %}

{#
    printf-style message: format_message("'user %s: %s'", 'a', 'b'). The template is SQL
    (a literal) using only %s; the other arguments are SQL expressions.
#}
{% macro format_message(template) -%}
    {{ return(adapter.dispatch('format_message', 'features_mart')(template, varargs)) }}
{%- endmacro %}

{% macro default__format_message(template, arguments) -%}
    format({{ template }}{% for argument in arguments %}, {{ argument }}{% endfor %})
{%- endmacro %}

{% macro spark__format_message(template, arguments) -%}
    format_string({{ template }}{% for argument in arguments %}, {{ argument }}{% endfor %})
{%- endmacro %}
