// The Jinja language as transformers' Jinja2 environment renders it. Each expected string was
// produced by Jinja2 3.1 with apply_chat_template's settings (trim_blocks, lstrip_blocks,
// loopcontrols, tojson as json.dumps); chat_reference_test.cpp checks whole chat templates.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "jinja/template.h"

namespace {

std::string render(const std::string& src, const std::string& json_context = "{}") {
    return jinja::Template(src).render(jinja::Value::from_json(nlohmann::ordered_json::parse(json_context)));
}

std::string error_of(const std::string& src, const std::string& json_context = "{}") {
    try {
        render(src, json_context);
    } catch (const jinja::Error& e) {
        return e.what();
    }
    return "(no error)";
}

struct Case {
    const char* what;
    const char* source;
    const char* context;
    const char* expected;
};

// clang-format off
const Case kCases[] = {
    {"whitespace: trim_blocks and lstrip_blocks",
     R"J(a
  {% if true %}
  b
  {% endif %}
c
)J",
     R"J({})J",
     R"J(a
  b
c)J"},
    {"whitespace: minus strips both sides",
     R"J(a  {{- 'x' -}}  
 b {%- if true -%} 
 c {%+ if true %}d{% endif %}{% endif %})J",
     R"J({})J",
     R"J(axbc d)J"},
    {"comments vanish with their line",
     R"J(x
  {# note #}
y{#- n -#}  z)J",
     R"J({})J",
     R"J(x
yz)J"},
    {"python str of values",
     R"J({{ none }}|{{ true }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ [1, 'a', none] }}|{{ {'k': "it's"} }}|{{ undefined_var }})J",
     R"J({})J",
     R"J(None|True|1.0|0.30000000000000004|1e+20|[1, 'a', None]|{'k': "it's"}|)J"},
    {"arithmetic",
     R"J({{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 'ab' ~ 3 }} {{ 'ab' * 2 }} {{ [1] + [2] }})J",
     R"J({})J",
     R"J(3 -4 1 2 3.5 1024 ab3 abab [1, 2])J"},
    {"comparisons and logic",
     R"J({{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ 'x' in 'xyz' }} {{ 2 not in [1, 3] }} {{ none or 'd' }} {{ 0 and 1 }} {{ not [] }})J",
     R"J({})J",
     R"J(True True True True d 0 True)J"},
    {"conditional expression",
     R"J({{ 'y' if x else 'n' }}{{ 'z' if false }})J",
     R"J({"x": 1})J",
     R"J(y)J"},
    {"loop variables",
     R"J({% for x in xs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.length }}{{ '!' if loop.first }}{{ '$' if loop.last }}{{ loop.cycle('a','b') }} {% endfor %})J",
     R"J({"xs": [5, 6, 7]})J",
     R"J(1/0/3/3!a 2/1/2/3b 3/2/1/3$a )J"},
    {"loop filter, else, break, continue",
     R"J({% for x in xs if x > 1 %}{% if x == 4 %}{% continue %}{% endif %}{% if x == 6 %}{% break %}{% endif %}{{ x }}{{ loop.length }},{% endfor %}{% for y in [] %}no{% else %}empty{% endfor %})J",
     R"J({"xs": [1, 2, 3, 4, 5, 6, 7]})J",
     R"J(26,36,56,empty)J"},
    {"dict iteration and unpacking",
     R"J({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %})J",
     R"J({"d": {"b": 1, "a": 2}})J",
     R"J(b=1;a=2;ba)J"},
    {"scoping: set in a loop stays there, namespace does not",
     R"J({% set n = 0 %}{% set ns = namespace(n=0) %}{% for x in [1, 2] %}{% set n = n + x %}{% set ns.n = ns.n + x %}{% endfor %}{{ n }} {{ ns.n }})J",
     R"J({})J",
     R"J(0 3)J"},
    {"set block and tuple set",
     R"J({% set a, b = 1, 2 %}{% set t %}[{{ a + b }}]{% endset %}{{ t }})J",
     R"J({})J",
     R"J([3])J"},
    {"macros with defaults and keywords",
     R"J({% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', punct='?') }} {{ greet(name='C') }})J",
     R"J({})J",
     R"J(Hi A! Hi B? Hi C!)J"},
    {"slices and negative indices",
     R"J({{ xs[1:] }} {{ xs[::-1] }} {{ xs[-1] }} {{ xs[:-1] }} {{ 'hello'[1:3] }} {{ 'héllo'[::-1] }})J",
     R"J({"xs": [1, 2, 3]})J",
     R"J([2, 3] [3, 2, 1] 3 [1, 2] el olléh)J"},
    {"string methods",
     R"J({{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'aXa'.replace('a', 'b') }}|{{ 'hi there'.title() }}|{{ 'ABC'.lower() }}|{{ '\n\nx\n'.lstrip('\n') }})J",
     R"J({})J",
     R"J(a b|a|['a', 'b', '', 'c']|['a', 'b']|True|True|bXb|Hi There|abc|x
)J"},
    {"dict methods",
     R"J({{ d.get('a') }} {{ d.get('z', 'dflt') }} {{ d.get('z') }} {{ d.keys() | list }} {{ d.values() | list }})J",
     R"J({"d": {"a": 1, "b": [true, null]}})J",
     R"J(1 dflt None ['a', 'b'] [1, [True, None]])J"},
    {"filters",
     R"J({{ '  x ' | trim }}|{{ xs | length }}|{{ 'héllo' | length }}|{{ xs | join(', ') }}|{{ xs | first }}|{{ xs | last }}|{{ xs | reverse | list }}|{{ xs | sort | list }}|{{ none | default('d') }}|{{ u | default('d') }}|{{ '' | default('e', true) }}|{{ 'ab' | upper }}|{{ 3.7 | int }}|{{ '4' | int + 1 }}|{{ -3 | abs }}|{{ 2.567 | round(1) }}|{{ xs | unique | list }}|{{ 'a\nb' | indent(2) }})J",
     R"J({"xs": [3, 1, 2, 3]})J",
     R"J(x|4|5|3, 1, 2, 3|3|3|[3, 2, 1, 3]|[1, 2, 3, 3]|None|d|e|AB|3|5|3|2.6|[3, 1, 2]|a
  b)J"},
    {"select, map and attributes",
     R"J({{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('+') }} {{ ms | rejectattr('role', 'equalto', 'user') | list | length }} {{ [1, 2, 3, 4] | select('even') | list }} {{ [1, 2, 3] | reject('odd') | list }} {{ ['a', 'b'] | map('upper') | list }} {{ ms | map(attribute='x', default='-') | list }})J",
     R"J({"ms": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}, {"role": "user", "content": "c"}]})J",
     R"J(a+c 1 [2, 4] [2] ['A', 'B'] ['-', '-', '-'])J"},
    {"tests",
     R"J({{ u is defined }} {{ none is none }} {{ 'a' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ {} is mapping }} {{ [] is iterable }} {{ 'x' is iterable }} {{ 4 is divisibleby 2 }} {{ 3 is odd }} {{ x is not none }} {{ true is true }} {{ 0 is false }} {{ 'a' is equalto('a') }} {{ 'abc' is lower }})J",
     R"J({"x": 1})J",
     R"J(False True True True True True True True True True True True True False True True)J"},
    {"tojson like json.dumps",
     R"J({{ v | tojson }}
{{ v | tojson(indent=2) }}
{{ v | tojson(sort_keys=true) }})J",
     R"J({"v": {"b": "\u00e9\"\n\t\u0001/", "a": [1, 2.5, true, null, {}], "e": []}})J",
     R"J({"b": "é\"\n\t\u0001/", "a": [1, 2.5, true, null, {}], "e": []}
{
  "b": "é\"\n\t\u0001/",
  "a": [
    1,
    2.5,
    true,
    null,
    {}
  ],
  "e": []
}
{"a": [1, 2.5, true, null, {}], "b": "é\"\n\t\u0001/", "e": []})J"},
    {"string escapes and concatenation",
     R"J({{ 'a\tb\u00e9\x41' }}{{ "q'" "r" }})J",
     R"J({})J",
     R"J(a	béAq'r)J"},
    {"raw block",
     R"J({% raw %}{{ not rendered }}{% endraw %})J",
     R"J({})J",
     R"J({{ not rendered }})J"},
    {"range and dict()",
     R"J({{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ dict(a=1)['a'] }})J",
     R"J({})J",
     R"J([0, 1, 2] [1, 3, 5] 1)J"},
};
// clang-format on

TEST(Jinja, RendersAsJinja2Does) {
    for (const Case& c : kCases) {
        SCOPED_TRACE(c.what);
        try {
            EXPECT_EQ(render(c.source, c.context), c.expected) << c.source;
        } catch (const jinja::Error& e) {
            ADD_FAILURE() << c.source << ": " << e.what();
        }
    }
}

TEST(Jinja, GenerationBlockRendersItsBody) {
    EXPECT_EQ(render("{% generation %}g{{ 1 }}{% endgeneration %}!"), "g1!");
}

TEST(Jinja, RaiseExceptionKeepsTheTemplatesMessage) {
    EXPECT_EQ(error_of("{% if true %}{{ raise_exception('Roles must alternate') }}{% endif %}"), "Roles must alternate");
}

TEST(Jinja, ErrorsNameTheLine) {
    EXPECT_EQ(error_of("a\n{% if x %}"), "line 2: missing '{% endif %}'");
    EXPECT_EQ(error_of("{{ 1 +"), "line 1: unclosed tag");
    EXPECT_EQ(error_of("{{ 1 + }}"), "line 1: unexpected 'end of tag'");
    EXPECT_EQ(error_of("{% for %}{% endfor %}"), "line 1: expected a name");
    EXPECT_EQ(error_of("\n{{ x.y.z }}", R"({"x": {}})"), "line 2: undefined value has no attribute 'z'");
    EXPECT_EQ(error_of("{{ 'a' + 1 }}"), "line 1: unsupported operand type(s) for +: 'str' and 'int'");
    EXPECT_EQ(error_of("{{ x | nosuchfilter }}"), "line 1: unknown filter 'nosuchfilter'");
    EXPECT_EQ(error_of("{% set x.y = 1 %}", R"({"x": {}})"), "line 1: cannot assign attribute on non-namespace object 'x'");
    EXPECT_EQ(error_of("{% call foo() %}{% endcall %}"), "line 1: unsupported tag 'call'");
    EXPECT_EQ(error_of("{{ 'unterminated }}"), "line 1: unterminated string");
    EXPECT_EQ(error_of("{% for x in none %}{% endfor %}"), "line 1: 'NoneType' object is not iterable");
}

// Templates come with models: no input may crash the renderer or run without end.
TEST(Jinja, HostileTemplatesFailCleanly) {
    EXPECT_EQ(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), "line 1: macro 'f' nested more than 64 deep");
    EXPECT_EQ(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"), "line 1: nested more than 200 deep");
    EXPECT_EQ(error_of("{{ " + std::string(5000, '-') + "1 }}"), "line 1: nested more than 200 deep");
    std::string ifs;
    for (int i = 0; i < 300; ++i) ifs += "{% if true %}";
    EXPECT_EQ(error_of(ifs), "line 1: nested more than 200 deep");
    EXPECT_EQ(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"), "line 1: value nested more than 100 deep");
    EXPECT_EQ(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}"), "line 1: value nested more than 100 deep");
    EXPECT_EQ(error_of("{{ range(10000000) | length }}"), "line 1: range() too long");
    EXPECT_EQ(error_of("{{ 1 // 0 }}"), "line 1: integer division or modulo by zero");
    EXPECT_EQ(error_of("{{ x[::0] }}", R"({"x": [1]})"), "line 1: slice step cannot be zero");
    EXPECT_EQ(error_of("{{ ('ab' * 100000000) | length }}"), "line 1: string repetition longer than 16 MiB");
    EXPECT_EQ(error_of("{% for x in 5 %}{% endfor %}"), "line 1: 'int' object is not iterable");
}

TEST(Jinja, StrftimeNowUsesTheGivenClock) {
    std::tm tm{};
    tm.tm_year = 126;
    tm.tm_mon = 0;
    tm.tm_mday = 15;
    jinja::RenderOptions options;
    options.now = [tm] { return tm; };
    EXPECT_EQ(jinja::Template("{{ strftime_now('%Y-%m-%d') }}").render(jinja::Value::object(), options), "2026-01-15");
}

TEST(Jinja, FloatReprIsPythons) {
    EXPECT_EQ(jinja::float_repr(1.0), "1.0");
    EXPECT_EQ(jinja::float_repr(0.0001), "0.0001");
    EXPECT_EQ(jinja::float_repr(0.00001), "1e-05");
    EXPECT_EQ(jinja::float_repr(1e15), "1000000000000000.0");
    EXPECT_EQ(jinja::float_repr(1e16), "1e+16");
    EXPECT_EQ(jinja::float_repr(-2.5), "-2.5");
    EXPECT_EQ(jinja::float_repr(123456.789), "123456.789");
}

}  // namespace
