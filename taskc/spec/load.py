"""Read a spec file into a validated `Spec`, turning every shape problem into a located diagnostic."""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from taskc.errors import Diagnostic, SpecError
from taskc.spec.model import OUTPUT_MODELS, Spec
from taskc.spec.paths import ProjectRoot, project_root, regular_file_problem
from taskc.spec.yaml_source import Located, load_yaml

#: A spec is a page of YAML; data belongs in data files. Bigger files are refused unread.
MAX_SPEC_BYTES = 1024 * 1024
#: Unknown top-level fields reported one by one; the rest are counted.
MAX_UNKNOWN_FIELDS = 20

# What a union-typed field accepts, in words, for errors where no single branch fits.
_UNION_WORDS = {
    "labels": "a list of strings or {file: PATH, pointer: JSON_POINTER}",
    "tools": "a list of tools or {file: PATH, pointer: JSON_POINTER}",
    "metric": "a metric name or {name: {options}}",
    "metrics": "a metric name or {name: {options}}",
}


@dataclass(frozen=True)
class LoadedSpec:
    """A spec read section by section: `sections` holds each top-level field that has the right
    shape (so later checks can go on where others failed), `problems` every shape problem."""

    path: Path
    source: Located
    sections: dict[str, Any]
    output: BaseModel | None
    problems: tuple[Diagnostic, ...]
    text: str
    root: ProjectRoot | None = None

    @property
    def base_dir(self) -> Path:
        """Paths in a spec are relative to the spec file."""
        return self.path.parent

    @property
    def project(self) -> ProjectRoot:
        """Where the files this spec names may lie (taskc.spec.paths)."""
        return self.root if self.root is not None else project_root(self.path)

    @property
    def spec(self) -> Spec:
        """The whole spec; only valid when there were no problems."""
        return Spec.model_construct(**{k: v for k, v in self.sections.items()})


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@lru_cache(maxsize=None)
def _adapter(name: str) -> TypeAdapter:
    info = Spec.model_fields[name]
    annotation = typing.Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(annotation)


def load_spec(path: str | Path, allow_outside: tuple[str | Path, ...] = ()) -> LoadedSpec:
    """Parse and shape-check a spec file section by section; `allow_outside` names places
    outside the project root its files may lie in (taskc.spec.paths).

    Raises SpecError only when nothing can be checked further (unreadable or oversized file,
    invalid YAML, not a mapping); otherwise the problems ride along in `LoadedSpec.problems`."""
    spec_path = Path(path)
    shown = display_path(spec_path)
    text = _read_spec(spec_path, shown)
    source, problems = load_yaml(text, shown)
    if source is None:
        raise SpecError(problems)
    data = source.data
    if not isinstance(data, dict):
        raise SpecError([*problems, source.at((), "a spec must be a mapping of fields (taskc: 1, name: ..., ...)")])
    sections: dict[str, Any] = {}
    fields = {(f.alias or n): n for n, f in Spec.model_fields.items()}
    unknown = [key for key in data if key not in fields]
    for key in unknown[:MAX_UNKNOWN_FIELDS]:
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(fields)})"
        problems.append(source.at((key,), f"unknown field '{key}'{hint}", key=True))
    if len(unknown) > MAX_UNKNOWN_FIELDS:
        more = len(unknown) - MAX_UNKNOWN_FIELDS
        problems.append(source.at((unknown[MAX_UNKNOWN_FIELDS],), f"... and {more:,} more unknown fields", key=True))
    for key, name in fields.items():
        info = Spec.model_fields[name]
        if key not in data:
            if info.is_required():
                problems.append(source.at((), f"missing required field '{key}'"))
            else:
                sections[name] = info.get_default(call_default_factory=True)
            continue
        value = data[key]
        if name == "inputs" and isinstance(value, dict):
            value = {k: ({"type": v} if isinstance(v, str) else v) for k, v in value.items()}
        if name == "output":
            problems.extend(_check_output_kind(source))
            sections[name] = value
            continue
        try:
            sections[name] = _adapter(name).validate_python(value)
        except ValidationError as exc:
            problems.extend(_translate(exc, source, (key,), _model_in(info.annotation)))
    output = None
    raw_output = data.get("output")
    if isinstance(raw_output, dict) and raw_output.get("kind") in OUTPUT_MODELS:
        model = OUTPUT_MODELS[raw_output["kind"]]
        try:
            output = model.model_validate(raw_output)
        except ValidationError as exc:
            problems.extend(_translate(exc, source, ("output",), model))
    if "output" in sections and output is None:
        del sections["output"]
    return LoadedSpec(path=spec_path, source=source, sections=sections, output=output,
                      problems=tuple(problems), text=text, root=project_root(spec_path, allow_outside))


def _read_spec(spec_path: Path, shown: str) -> str:
    problem = regular_file_problem(spec_path)
    if problem:
        raise SpecError([Diagnostic(shown, 1, 1, f"cannot read spec: {spec_path} {problem}")])
    try:
        with spec_path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([Diagnostic(shown, 1, 1, "spec file not found")]) from None
    except OSError as exc:
        raise SpecError([Diagnostic(shown, 1, 1, f"cannot read spec: {exc}")]) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError([Diagnostic(shown, 1, 1, f"spec is larger than {MAX_SPEC_BYTES:,} bytes (1 MiB): "
                                                 "a spec is a page of YAML; put data in data files")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([Diagnostic(shown, 1, 1, f"cannot read spec: {exc}")]) from None


def _check_output_kind(source: Located) -> list[Diagnostic]:
    output = source.data.get("output")
    if output is None:
        return []
    if not isinstance(output, dict):
        return [source.at(("output",), "output must be a mapping with a 'kind'")]
    kind = output.get("kind")
    if kind is None:
        return [source.at(("output",), f"missing required field 'kind' in output (one of: {', '.join(OUTPUT_MODELS)})", key=True)]
    if kind not in OUTPUT_MODELS:
        return [source.at(("output", "kind"), f"unknown output kind {kind!r} (expected one of: {', '.join(OUTPUT_MODELS)})")]
    return []


def _translate(exc: ValidationError, source: Located, prefix: tuple, model: type[BaseModel]) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen_unions: set[tuple] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, rest = _split_loc(source.data, prefix, loc)
        field = str(path[-1]) if path else "spec"
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _fields_at(model, [p for p in path[len(prefix):-1] if isinstance(p, str)]) if model else []
            hint = ""
            if allowed:
                close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(allowed)})"
            where = _where(path[:-1])
            out.append(source.at(path, f"unknown field '{path[-1]}'{where}{hint}", key=True))
        elif kind == "missing" and rest:
            out.append(source.at(path, f"missing required field '{rest[-1]}'{_where(path)}", key=True))
        elif rest and path and str(path[-1]) in _UNION_WORDS:
            if path not in seen_unions:
                seen_unions.add(path)
                out.append(source.at(path, f"'{field}' must be {_UNION_WORDS[str(path[-1])]}"))
        else:
            message = err["msg"].replace("Input should be", "should be").replace("String should", "should")
            if message.startswith("Value error, "):
                out.append(source.at(path, message[len("Value error, "):]))
            else:
                out.append(source.at(path, f"'{field}' {message}"))
    return out


def _where(path: tuple) -> str:
    names = [str(p) for p in path if isinstance(p, str)]
    return f" in {'.'.join(names)}" if names else ""


def _split_loc(data: Any, prefix: tuple, loc: tuple) -> tuple[tuple, tuple]:
    """Split a pydantic location into the part that exists in the data and the rest."""
    path = tuple(prefix)
    node = data
    for part in prefix:
        node = node[part] if isinstance(node, (dict, list)) else None
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node, path = node[part], path + (part,)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node, path = node[part], path + (part,)
        else:
            return path, tuple(p for p in loc[i:])
    return path, ()


def _fields_at(model: type[BaseModel], keys: list[str]) -> list[str]:
    """The field names (aliases) allowed at `keys` below `model`, for unknown-field hints."""
    current: type[BaseModel] | None = model
    for key in keys:
        if current is None:
            return []
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == key), None)
        if field is not None:  # else `key` is a mapping key (an input name): same model below
            current = _model_in(field.annotation)
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
