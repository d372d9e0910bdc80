"""The chat messages of one row, from the contract body alone: what the templates see, the row's
turns, and the whole conversation (system prompt, few-shot turns, then the row's turns).

These are pure functions of contract.json's body and a row's inputs, so the compiler (for the
static prefix), the contract and anything reading a run folder render exactly the same text.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from taskc.compiler.prompts import render
from taskc.compiler.turns import history_turns

#: Variables every template sees besides the task's inputs; sql tasks also get `schema`.
FORMAT_INSTRUCTIONS = "format_instructions"
SQL_SCHEMA = "schema"


def template_names(inputs: Iterable[str], output_kind: str | None) -> set[str]:
    """The names a prompt template may use: the inputs, `format_instructions`, and for sql
    tasks `schema` (the row's database DDL)."""
    names = set(inputs) | {FORMAT_INSTRUCTIONS}
    if output_kind == "sql":
        names.add(SQL_SCHEMA)
    return names


def template_variables(body: Mapping[str, Any], inputs: Mapping[str, Any], ddl: str | None) -> dict[str, Any]:
    """What the templates see for one row: its inputs, the format instructions and, for sql
    tasks, the DDL of the row's database (`ddl`)."""
    variables = dict(inputs)
    variables[FORMAT_INSTRUCTIONS] = body["prompt"]["format_instructions"]
    if body["output"]["kind"] == "sql":
        variables[SQL_SCHEMA] = ddl or ""
    return variables


def row_turns(body: Mapping[str, Any], inputs: Mapping[str, Any], variables: Mapping[str, Any]) -> list[dict[str, str]]:
    """History turns of every `messages` input (in declaration order), then the user template."""
    out: list[dict[str, str]] = []
    for name, declared in body["inputs"].items():
        if declared.get("type") == "messages":
            out.extend(history_turns(inputs.get(name)))
    user = body["prompt"].get("user")
    if user is not None:
        text = render(user, dict(variables))
        if text.strip() or not out:
            out.append({"role": "user", "content": text})
    return out


def render_messages(body: Mapping[str, Any], inputs: Mapping[str, Any], ddl: str | None = None) -> list[dict[str, str]]:
    """The chat messages one row sends: system, few-shot turns, then the row's turns."""
    prompt = body["prompt"]
    variables = template_variables(body, inputs, ddl)
    out: list[dict[str, str]] = []
    if prompt.get("system"):
        out.append({"role": "system", "content": render(prompt["system"], variables)})
    for shot in (prompt.get("few_shot") or {}).get("examples", []):
        out.extend(shot["turns"])
        out.append({"role": "assistant", "content": shot["assistant"]})
    out.extend(row_turns(body, inputs, variables))
    return out
