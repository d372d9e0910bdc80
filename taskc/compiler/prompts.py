"""Prompt templates: checked at compile time, rendered in a sandbox, never over data values."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from taskc.compiler.output import OutputDecl
from taskc.common.encoding import compact_json
from taskc.compiler.sandbox import MAX_RENDER_CHARS, TemplateLimit, restore_deadline, start_deadline
from taskc.errors import Diagnostic, TaskcError
from taskc.spec.yaml_source import Located


class RenderError(TaskcError):
    """A template failed to render (a bound of taskc.compiler.sandbox, the sandbox refusing an
    attribute, an undefined value, a type error). `line` is the template's line, when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@lru_cache(maxsize=1)
def environment():
    """The one Jinja environment: sandboxed, strict about undefined names, no autoescape, and
    bounded in output size, value size and time (taskc.compiler.sandbox)."""
    from taskc.compiler.sandbox import bounded_environment

    return bounded_environment()


@lru_cache(maxsize=256)
def compile_template(text: str):
    """A compiled template (cached: the same template text renders many rows)."""
    return environment().from_string(text)


def check_template(source: Located, path: tuple, text: str, provided: set[str]) -> list[Diagnostic]:
    """Syntax errors and variables no input provides, each at its place in the spec file."""
    from jinja2 import TemplateSyntaxError, meta

    env = environment()
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as exc:
        line, col = source.text_position(path, exc.lineno or 1, _syntax_column(text, exc.lineno or 1))
        return [Diagnostic(source.path, line, col, f"template syntax error: {exc.message}")]
    problems = []
    for name in sorted(meta.find_undeclared_variables(ast)):
        if name in provided:
            continue
        t_line, t_col = _find_name(text, name)
        line, col = source.text_position(path, t_line, t_col)
        known = ", ".join(sorted(provided)) or "none"
        problems.append(Diagnostic(source.path, line, col, f"template variable '{name}' is not provided by any input (available: {known})"))
    return problems


def _syntax_column(text: str, lineno: int) -> int:
    lines = text.splitlines() or [""]
    line = lines[min(lineno, len(lines)) - 1]
    found = max(line.rfind("{{"), line.rfind("{%"))
    return found + 1 if found >= 0 else 1


def _find_name(text: str, name: str) -> tuple[int, int]:
    pattern = re.compile(r"(?<![A-Za-z0-9_.])" + re.escape(name) + r"(?![A-Za-z0-9_])")
    for number, line in enumerate(text.splitlines(), start=1):
        for tag in re.finditer(r"\{\{.*?\}\}|\{%.*?%\}", line):
            match = pattern.search(line, tag.start(), tag.end())
            if match:
                return number, match.start() + 1
    return 1, 1


_SINGLE = re.compile(r"\A\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\Z")


@lru_cache(maxsize=256)
def _referenced(text: str) -> tuple[str, ...] | str:
    """The variable a bare `{{ name }}` template prints (as a str), or every name it uses."""
    match = _SINGLE.match(text)
    if match:
        return match.group(1)
    from jinja2 import meta

    return tuple(sorted(meta.find_undeclared_variables(environment().parse(text))))


_rendered: dict[tuple, str] = {}


def render(text: str, variables: dict[str, Any]) -> str:
    """Render a template; data values are passed as variables, never parsed as templates.
    Raises RenderError, never anything else, when it cannot (see taskc.compiler.sandbox).

    Two shortcuts keep compiling 10,000-row splits fast, with the same result as Jinja: a bare
    `{{ name }}` prints `str(value)`, and a template whose variables all have hashable values
    is rendered once per distinct set of values (a system prompt: once per task)."""
    try:
        names = _referenced(text)
    except Exception as exc:  # a syntax error: check_template reports it at compile time
        raise RenderError(_words(exc), getattr(exc, "lineno", None)) from None
    if isinstance(names, str):
        if names in variables:
            out = str(variables[names])
            if len(out) > MAX_RENDER_CHARS:
                raise RenderError(f"the rendered text would be {len(out):,} long, more than the "
                                  f"{MAX_RENDER_CHARS:,} a render may build", 1)
            return out
        return _render(text, variables)  # raises StrictUndefined's error
    try:
        key = (text, tuple(variables.get(n) for n in names))
        hash(key)
    except TypeError:
        return _render(text, variables)
    out = _rendered.get(key)
    if out is None:
        if len(_rendered) > 4096:
            _rendered.clear()
        out = _rendered[key] = _render(text, variables)
    return out


def _render(text: str, variables: dict[str, Any]) -> str:
    previous = start_deadline()
    try:
        return compile_template(text).render(variables)
    except RecursionError:
        raise RenderError("the template calls or nests too deeply", _template_line()) from None
    except MemoryError:
        raise RenderError("the render ran out of memory", _template_line()) from None
    except Exception as exc:  # TemplateLimit, SecurityError, OverflowError, UndefinedError, TypeError, ...
        raise RenderError(_words(exc), _template_line()) from None
    finally:
        restore_deadline(previous)


def _words(exc: BaseException) -> str:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    message = str(getattr(exc, "message", None) or exc).rstrip(".")
    if isinstance(exc, SecurityError):
        return f"refused by the sandbox: {message}"
    if isinstance(exc, OverflowError) and message.startswith("("):
        return "a number is too large"  # float overflow: OverflowError((34, 'Numerical result out of range'))
    if isinstance(exc, (TemplateLimit, TemplateError, OverflowError)):
        return message
    return f"{type(exc).__name__}: {message}"


def _template_line() -> int | None:
    """The template line the exception being handled was raised at (Jinja maps its frames)."""
    import sys

    tb = sys.exc_info()[2]
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def format_instructions(output: OutputDecl) -> str:
    """The words every backend reads about the answer's form, compiled from the declaration."""
    if output.kind == "label":
        lines = "\n".join(f"- {label}" for label in output.labels)
        return f"Answer with exactly one of these labels and nothing else:\n{lines}"
    if output.kind == "tool_call":
        tools = "\n".join(
            f"- {t['name']}: {t['description']}\n  parameters: {compact_json(t['parameters'])}" for t in output.tools
        )
        return (
            'Answer with exactly one tool call and nothing else, as a JSON object '
            '{"name": <tool name>, "parameters": {<arguments>}}. Omit a parameter to use its default.\n'
            f"Tools:\n{tools}"
        )
    if output.kind == "object":
        return f"Answer with one JSON object that matches this JSON Schema, and nothing else:\n{compact_json(output.schema)}"
    if output.kind == "sql":
        text = (f"Answer with exactly one {output.dialect or 'SQL'} query (a single SELECT statement) and nothing else: "
                "no explanation, no code fence.")
        if output.grammar != "permissive":  # the canonical form the grammar and the training data use
            text += (" Write SQL keywords and functions in upper case, table and column names as the schema spells "
                     "them, table aliases T1, T2, ..., single spaces, and strings in single quotes.")
        return text
    return ""
