"""Every row's prompts rendered once at compile time, so a template that cannot render (a bound of
the sandbox, an attribute it refuses, an undefined value, a type error) is an error at its place
in the spec, naming the row, instead of a traceback when the row is sent."""

from __future__ import annotations

from taskc.compiler.data import Split
from taskc.compiler.messages import template_variables
from taskc.compiler.output import OutputDecl
from taskc.compiler.prompts import RenderError, format_instructions, render
from taskc.errors import Diagnostic
from taskc.spec.load import LoadedSpec


def render_rows(loaded: LoadedSpec, output: OutputDecl, rows: dict[str, Split], databases, row_dbs) -> list[Diagnostic]:
    """Render the prompt templates of every row of every split once (the sandbox bounds each
    render's size and time); the first row a template fails on is an error at the template."""
    spec = loaded.spec
    names = list(spec.inputs)
    templates = [(key, text) for key, text in (("system", spec.prompt.system), ("user", spec.prompt.user)) if text]
    body = {"prompt": {"format_instructions": format_instructions(output)}, "output": {"kind": output.kind}}
    problems: list[Diagnostic] = []
    failed: set[str] = set()  # each template's first failure is reported, once for all splits
    for name, split in rows.items():
        for i, row in enumerate(split.rows):
            inputs = {k: row.get(k) for k in names}
            ddl = databases[row_dbs[name][i]].ddl if output.kind == "sql" else None
            variables = template_variables(body, inputs, ddl)
            for key, text in templates:
                if key in failed:
                    continue
                try:
                    render(text, variables)
                except RenderError as exc:
                    failed.add(key)
                    problems.append(render_problem(loaded, ("prompt", key), text, exc, f"{name} row {i}"))
            if len(failed) == len(templates):
                break
    return problems


def render_problem(loaded: LoadedSpec, path: tuple, text: str, exc: RenderError, row: str) -> Diagnostic:
    """A render failure at its place in the spec: the template's line when Jinja knows it."""
    message = f"{'.'.join(path)} cannot be rendered: {exc} ({row})"
    lines = text.splitlines() or [""]
    number = min(exc.line or 1, len(lines))
    tag = [i for i in (lines[number - 1].find("{{"), lines[number - 1].find("{%")) if i >= 0] if exc.line else []
    line, col = loaded.source.text_position(path, number, min(tag) + 1 if tag else 1)
    return Diagnostic(loaded.source.path, line, col, message)
