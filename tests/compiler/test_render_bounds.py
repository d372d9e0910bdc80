"""Templates render in a bounded sandbox: repetition, huge output, slow loops, refused attributes
and overflows are errors at the template's place in the spec, with the row, exit 2."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taskc.compiler.build import compile_spec
from taskc.compiler.prompts import RenderError, render
from taskc.errors import SpecError

SPEC = """\
taskc: 1
name: demo
inputs:
  text: string
output:
  kind: label
  labels: [pos, neg]
prompt:
  system: "Classify. {{ format_instructions }}"
  user: USER
data:
  test: {file: data.jsonl}
  train: {file: train.jsonl}
metric: exact_match
"""
ROWS = [{"text": "fine", "answer": "pos"}, {"text": "bad", "answer": "neg"}]
LIMIT = "more than the 4,000,000 a render may build"


def errors(tmp: Path, user: str, rows=ROWS, train=ROWS, block=False) -> list[str]:
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
    written = "|\n" + textwrap.indent(user, "    ") if block else json.dumps(user)
    (tmp / "spec.yaml").write_text(SPEC.replace("USER", written))
    with pytest.raises(SpecError) as info:
        compile_spec(tmp / "spec.yaml")
    return [d.format() for d in info.value.diagnostics]


@pytest.mark.parametrize("user, message", [
    ("{{ 'a' * 10**9 }}", f"'*' repeating a str would be 1,000,000,000 long, {LIMIT}"),
    ("{{ [text] * 10**9 }}", f"'*' repeating a list would be 1,000,000,000 long, {LIMIT}"),
    ("{{ 7 ** (10**6) }}", "'**' would make an integer of more than 16,384 bits"),
    ("{{ '%999999999s' % text }}", f"a '%' format field would be 999,999,999 long, {LIMIT}"),
    ("{{ '{:>999999999}'.format(text) }}", f"a format field would be 999,999,999 long, {LIMIT}"),
    ("{{ text|center(10**9) }}", f"center() would be 1,000,000,000 long, {LIMIT}"),
    ("{{ text.ljust(10**9) }}", f"str.ljust() would be 1,000,000,000 long, {LIMIT}"),
    ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", f"the rendered text would be 4,000,100 long, {LIMIT}"),
    ("{% set ns = namespace(s=text) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
     f"the rendered text would be 4,194,304 long, {LIMIT}"),
    ("{{ text.__class__.__mro__ }}", "refused by the sandbox: access to attribute '__class__' of 'str' object is unsafe"),
    ("{{ range(10**6)|list }}", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)"),
    ("{{ 2.0 ** 100000 }}", "a number is too large"),
])
def test_a_template_past_a_bound_is_an_error_at_the_template(chdir, user, message):
    assert errors(chdir, user) == [f"spec.yaml:10:10: error: prompt.user cannot be rendered: {message} (test row 0)"]


def test_lipsum_is_not_offered(chdir):  # lipsum(n=10**9) would build text without bound
    assert errors(chdir, "{{ lipsum(10**6) }}") == [
        "spec.yaml:10:13: error: template variable 'lipsum' is not provided by any input (available: format_instructions, text)"]


def test_a_slow_render_stops_at_the_time_limit(chdir):
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    assert errors(chdir, loops) == [
        "spec.yaml:10:10: error: prompt.user cannot be rendered: rendering took longer than 1 s (test row 0)"]


def test_a_huge_data_value_is_a_huge_prompt(chdir):
    rows = [ROWS[0], {"text": "x" * 4_000_001, "answer": "neg"}]
    assert errors(chdir, "{{ text }}", rows=rows) == [
        f"spec.yaml:10:10: error: prompt.user cannot be rendered: the rendered text would be 4,000,001 long, {LIMIT} (test row 1)"]


def test_the_error_names_the_row_and_the_template_line(chdir):
    rows = [ROWS[0], {"text": None, "answer": "neg"}]
    found = errors(chdir, "Text:\n{{ text.upper() }}", rows=rows, block=True)
    assert found == ["spec.yaml:12:5: error: prompt.user cannot be rendered: 'None' has no attribute 'upper' (test row 1)"]


def test_train_rows_are_rendered_too(chdir):
    train = [ROWS[0], {"text": "boom", "answer": "neg"}]
    found = errors(chdir, "{{ text ~ (10 ** (10**5) if text == 'boom' else '') }}", train=train)
    assert found == ["spec.yaml:10:10: error: prompt.user cannot be rendered: '**' would make an integer "
                     "of more than 16,384 bits (train row 1)"]


def test_ordinary_templates_render_as_before():
    template = ("{{ text|length }} {{ '%05d' % 3 }} {{ '{:>5}'.format('a') }} {{ 'ab' * 3 }} {{ text|center(9) }}"
                "{% for x in [1, 2] %} {{ loop.index }}/{{ loop.length }}{% endfor %} {{ [1, 2]|join(', ') }}"
                " {{ 'a-b'.replace('-', '+') }} {{ range(3)|batch(2, 0)|list }} {{ {'k': 1}|tojson }}")
    assert render(template, {"text": "abc"}) == ('3 00003     a ababab    abc    1/2 2/2 1, 2 a+b [[0, 1], [2, 0]] {"k": 1}')


def test_render_raises_only_render_error():
    with pytest.raises(RenderError) as info:
        render("{{ 1 + text }}", {"text": "a"})
    assert str(info.value) == "TypeError: unsupported operand type(s) for +: 'int' and 'str'"


def test_the_database_template_is_bounded_too(chdir):
    (chdir / "data.jsonl").write_text(json.dumps({"text": "q", "answer": "SELECT 1"}) + "\n")
    spec = textwrap.dedent("""\
        taskc: 1
        name: demo
        inputs:
          text: string
        output:
          kind: sql
          database: "dbs/{{ text * 10**9 }}.sqlite"
        prompt:
          user: "{{ text }}"
        data:
          test: {file: data.jsonl}
        metric: execution_match
        """)
    (chdir / "spec.yaml").write_text(spec)
    with pytest.raises(SpecError) as info:
        compile_spec(chdir / "spec.yaml")
    assert [d.format() for d in info.value.diagnostics] == [
        f"spec.yaml:7:18: error: output.database cannot be rendered: '*' repeating a str would be "
        f"1,000,000,000 long, {LIMIT} (test row 0)"]


def test_the_cli_exits_2_without_a_traceback(chdir):
    (chdir / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (chdir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (chdir / "spec.yaml").write_text(SPEC.replace("USER", json.dumps("{{ text.__class__.__base__ }}")))
    proc = subprocess.run([sys.executable, "-m", "taskc.cli", "validate", "spec.yaml"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "spec.yaml:10:10: error: prompt.user cannot be rendered: refused by the sandbox: access to attribute "
        "'__class__' of 'str' object is unsafe (test row 0)", "1 error"]


@pytest.mark.parametrize("template", [
    "{% for x in xs recursive %}[{{ loop.depth }}:{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}{% endif %}]{% endfor %}",
    "{% for x in xs if x %}{{ loop.cycle('a', 'b') }}{{ x }}{{ loop.length }}{% else %}none{% endfor %}",
    "{% macro m(a) %}<{{ a }}{{ caller() }}>{% endmacro %}{% call m(1) %}c{% endcall %}",
    "{% set b %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}{{ b|upper }}{% filter upper %}x{{ 'd' ~ 1 }}{% endfilter %}",
    "{{ '%s-%d' % ('a', 3) }} {{ '%(x)s' % {'x': 1} }} {{ 3 * 'ab' }} {{ 2 ** 10 }} {{ 5 % 3 }} {{ -2 ** 3 }} {{ xs + xs }}",
    "{{ '{0}{1}'.format('a', 'b') }} {{ '{x:>4}'.format_map({'x': 'q'}) }} {{ ','.join(['a', 'b']) }}",
    "{{ text|indent(2, true) }}|{{ text|wordwrap(3) }}|{{ [1, 2, 3]|slice(2)|list }}|{{ text|replace('a', 'A', 1) }}",
])
def test_bounded_templates_render_what_jinja_renders(template):
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    variables = {"xs": [1, [2, [3]], 0, 4], "text": "a banana\nand a band"}
    assert render(template, variables) == plain.from_string(template).render(variables)
