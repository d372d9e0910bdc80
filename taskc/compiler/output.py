"""The output half of the contract: labels, tools or schema resolved, with the schemas, the
decoding constraint, the format instructions and the canonical serialization of gold answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping

from taskc.compiler.data import resolve_pointer
from taskc.common.encoding import compact_json
from taskc.compiler.schemas import normalize_schema, order_like, to_strict
from taskc.constraints.ir import Constraint
from taskc.errors import Diagnostic
from taskc.spec.type_syntax import TypeSyntaxError, nullable, object_schema, parse_type

if TYPE_CHECKING:  # the spec layer (pydantic, YAML) is imported by the resolvers, not by a cached contract's load
    from taskc.spec.load import LoadedSpec


@dataclass(frozen=True)
class OutputDecl:
    """A resolved output declaration (what contract.json's `output` holds, plus helpers)."""

    kind: str
    labels: tuple[str, ...] = ()
    tools: tuple[dict[str, Any], ...] = ()
    schema: dict[str, Any] | None = None
    database: str | None = None
    dialect: str | None = None
    grammar: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    #: sql with the canonical grammar: each gold query (stripped) -> its canonical text, filled
    #: by the compiler once the databases are read (`taskc.compiler.sql.canonical_gold`).
    sql_canonical: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The declaration as contract.json records it."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "label":
            out["labels"] = list(self.labels)
        elif self.kind == "tool_call":
            out["tools"] = list(self.tools)
        elif self.kind == "object":
            out["schema"] = self.schema
        elif self.kind == "sql":
            out.update(dialect=self.dialect, database=self.database)
            if self.grammar is not None:
                out["grammar"] = self.grammar
        return out

    @property
    def validate_schema(self) -> dict[str, Any] | None:
        """The full JSON Schema every output is checked against (None for sql and text)."""
        if self.kind == "label":
            return {"type": "string", "enum": list(self.labels)}
        if self.kind == "tool_call":
            return {"anyOf": [_tool_branch(t) for t in self.tools]}
        if self.kind == "object":
            return self.schema
        return None

    @property
    def strict_schema(self) -> dict[str, Any] | None:
        """The strict form every provider accepts; a label or tool call is wrapped in an object
        under the key `label` / `tool_call` (strict modes need an object at the root)."""
        if self.kind == "label":
            return to_strict(object_schema({"label": {"type": "string", "enum": list(self.labels)}}))
        if self.kind == "tool_call":
            return to_strict(object_schema({"tool_call": {"anyOf": [_tool_branch(t) for t in self.tools]}}))
        if self.kind == "object":
            return to_strict(self.schema or {})
        return None

    def constraint(self) -> Constraint | None:
        """The decoding constraint (sql is per database: see `taskc.compiler.sql`)."""
        if self.kind == "label":
            return Constraint("choice", choices=self.labels)
        if self.kind in ("tool_call", "object"):
            return Constraint.json(self.validate_schema or {})
        return None

    def serialize(self, value: Any) -> str:
        """A gold value as the constrained decoder emits it (compact JSON in schema order; sql:
        its canonical form where the compiler made one, else the query as written, stripped)."""
        if self.kind == "tool_call":
            tool = next((t for t in self.tools if t["name"] == value.get("name")), None)
            params = order_like(value.get("parameters", {}), tool["parameters"] if tool else None)
            return compact_json({"name": value.get("name"), "parameters": params})
        if self.kind == "object":
            return compact_json(order_like(value, self.schema))
        if self.kind == "sql":
            text = str(value).strip()
            return self.sql_canonical.get(text, text)
        return str(value)

    def parse_gold(self, raw: Any) -> tuple[Any, str | None]:
        """Read a gold answer from the data; (value, None) or (None, problem)."""
        if self.kind == "label":
            if not isinstance(raw, str):
                return None, f"gold label must be a string, got {json.dumps(raw)[:60]}"
            if raw not in self._label_set:
                return None, f"gold label '{raw}' is not in the label set"
            return raw, None
        if self.kind in ("tool_call", "object"):
            value = raw
            if isinstance(raw, str):
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    return None, f"gold answer is not valid JSON: {exc.msg} at char {exc.pos}"
            if not isinstance(value, dict):
                return None, "gold answer must be a JSON object"
            if self.kind == "tool_call":
                return _gold_tool_call(value, self.tools)
            return value, None
        if raw is None or (isinstance(raw, str) and not raw.strip() and self.kind == "sql"):
            return None, "gold answer is empty"
        return (raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)), None

    @cached_property
    def _label_set(self) -> frozenset[str]:
        return frozenset(self.labels)


def _tool_branch(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool["name"]}, "parameters": tool["parameters"]},
        "required": ["name", "parameters"],
        "additionalProperties": False,
    }


def _gold_tool_call(value: dict, tools: tuple[dict[str, Any], ...]) -> tuple[Any, str | None]:
    name = value.get("name")
    params = value.get("parameters", value.get("arguments", {}))
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError:
            return None, "gold tool call arguments are not valid JSON"
    if not isinstance(name, str) or not isinstance(params, dict):
        return None, 'gold tool call must look like {"name": ..., "parameters": {...}}'
    if name not in {t["name"] for t in tools}:
        return None, f"gold tool call names unknown tool '{name}'"
    return {"name": name, "parameters": params}, None


def resolve_output(loaded: LoadedSpec) -> tuple[OutputDecl | None, list[Diagnostic]]:
    """Resolve the output declaration: read label/tool files, lower short types to JSON Schema."""
    out = loaded.output
    kind = out.kind
    src = loaded.source
    if kind == "label":
        labels, files, problems = _read_ref(loaded, out.labels, ("output", "labels"), "label file")
        if problems:
            return None, problems
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            return None, [src.at(("output", "labels"), "labels must be a non-empty list of strings")]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            return None, [src.at(("output", "labels"), f"duplicate label '{dupes[0]}'")]
        return OutputDecl(kind="label", labels=tuple(labels), files=files), []
    if kind == "tool_call":
        return _resolve_tools(loaded)
    if kind == "object":
        return _resolve_object(loaded)
    if kind == "sql":
        return OutputDecl(kind="sql", database=out.database, dialect=out.dialect, grammar=out.grammar), []
    return OutputDecl(kind="text"), []


def _read_ref(loaded: LoadedSpec, value: Any, path: tuple, what: str) -> tuple[Any, dict[str, str], list[Diagnostic]]:
    from taskc.spec.model import FileRef

    if not isinstance(value, FileRef):
        return value, {}, []
    import hashlib

    from taskc.spec.paths import OutsideProject, regular_file_problem

    where = path + ("file",)
    try:
        file = loaded.project.confine(loaded.base_dir, value.file, what)
    except OutsideProject as exc:
        return None, {}, [loaded.source.at(where, str(exc))]
    problem = regular_file_problem(file)
    if problem:
        return None, {}, [loaded.source.at(where, f"cannot read {what} {value.file}: it {problem}")]
    try:
        raw = file.read_bytes()
    except OSError:
        return None, {}, [loaded.source.at(where, f"{what} not found: {value.file}")]
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, {}, [loaded.source.at(where, f"{what} {value.file} is not valid JSON: {exc}")]
    except RecursionError:
        return None, {}, [loaded.source.at(where, f"{what} {value.file} is nested too deeply to read")]
    try:
        document = resolve_pointer(document, value.pointer)
    except KeyError as exc:
        return None, {}, [loaded.source.at(path + ("pointer",), str(exc.args[0]))]
    return document, {value.file: hashlib.sha256(raw).hexdigest()}, []


def _resolve_tools(loaded: LoadedSpec) -> tuple[OutputDecl | None, list[Diagnostic]]:
    from pydantic import BaseModel, ValidationError

    from taskc.spec.model import OpenAITool

    path = ("output", "tools")
    raw, files, problems = _read_ref(loaded, loaded.output.tools, path, "tool file")
    if problems:
        return None, problems
    if not isinstance(raw, list) or not raw:
        return None, [loaded.source.at(path, "tools must be a non-empty list")]
    tools: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if isinstance(item, BaseModel):  # written inline: already shape-checked
            item = item.function if isinstance(item, OpenAITool) else item.model_dump(exclude_none=True)
        elif isinstance(item, dict) and item.get("type") == "function" and "function" in item:
            item = item["function"]  # OpenAI function-tool format, from a file
        try:
            if not isinstance(item, dict):
                raise ValueError("a tool must be a mapping")
            tool = _tool_dict(item)
        except (ValidationError, ValueError) as exc:
            problems.append(loaded.source.at(path + (i,), f"invalid tool: {str(exc).splitlines()[0]}"))
            continue
        if any(t["name"] == tool["name"] for t in tools):
            problems.append(loaded.source.at(path + (i,), f"duplicate tool name '{tool['name']}'"))
        tools.append(tool)
    if problems:
        return None, problems
    return OutputDecl(kind="tool_call", tools=tuple(tools), files=files), []


def _tool_dict(item: dict[str, Any]) -> dict[str, Any]:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a tool needs a 'name'")
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        raise ValueError(f"parameters of tool '{name}' must be a mapping")
    if params.get("type") == "object" and isinstance(params.get("properties"), dict):
        schema = dict(params)  # already a JSON Schema (OpenAI function format)
    else:
        props = {k: _property(v) for k, v in params.items()}
        required = item.get("required")
        schema = {"type": "object", "properties": props,
                  "required": list(required) if required is not None else [], "additionalProperties": False}
    unknown = set(schema.get("required", [])) - set(schema.get("properties", {}))
    if unknown:
        raise ValueError(f"tool '{name}' requires unknown parameter '{sorted(unknown)[0]}'")
    extra = set(item) - {"name", "description", "parameters", "required", "strict"}
    if extra:
        raise ValueError(f"unknown field '{sorted(extra)[0]}' in tool '{name}'")
    return {"name": name, "description": item.get("description", ""), "parameters": normalize_schema(schema)}


def _property(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return parse_type(value)
    if isinstance(value, dict):
        return dict(value) if "type" in value or "enum" in value or "anyOf" in value else _fields(value, ())[0]
    raise ValueError(f"a parameter must be a type or a JSON-Schema property, got {value!r}")


def _resolve_object(loaded: LoadedSpec) -> tuple[OutputDecl | None, list[Diagnostic]]:
    out = loaded.output
    if (out.schema_ is None) == (out.json_schema is None):
        return None, [loaded.source.at(("output",), "an object output needs exactly one of 'schema' or 'json_schema'")]
    if out.json_schema is not None:
        return OutputDecl(kind="object", schema=normalize_schema(out.json_schema)), []
    schema, problems = _fields(out.schema_, ("output", "schema"), loaded)
    return (None, problems) if problems else (OutputDecl(kind="object", schema=normalize_schema(schema)), [])


def _fields(mapping: dict[str, Any], path: tuple, loaded: LoadedSpec | None = None) -> tuple[dict[str, Any], list[Diagnostic]]:
    """A mapping of field -> short type / JSON-Schema property / nested mapping, as an object."""
    props: dict[str, Any] = {}
    problems: list[Diagnostic] = []
    for name, value in mapping.items():
        sub = path + (name,)
        if isinstance(value, str):
            try:
                props[name] = parse_type(value)
            except TypeSyntaxError as exc:
                if loaded is None:
                    raise ValueError(str(exc)) from None
                line, col = loaded.source.text_position(sub, 1, exc.column)
                problems.append(Diagnostic(loaded.source.path, line, col, f"{exc} (in the type of '{name}')"))
        elif isinstance(value, dict) and ("type" in value or "enum" in value or "anyOf" in value):
            prop = dict(value)
            if prop.pop("optional", False):
                prop = nullable(prop)
            props[name] = prop
        elif isinstance(value, dict):
            nested, more = _fields(value, sub, loaded)
            props[name] = nested
            problems.extend(more)
        else:
            message = f"field '{name}' needs a type (string, integer, number, boolean, list[T], ...)"
            if loaded is None:
                raise ValueError(message)
            problems.append(loaded.source.at(sub, message))
    return object_schema(props), problems
