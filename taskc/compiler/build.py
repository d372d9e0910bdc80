"""Compile a spec into a Contract, reporting every problem (spec, templates, data) in one pass."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from taskc.compiler.contract import Contract, contract_hash
from taskc.compiler.messages import render_messages, row_turns, template_names, template_variables
from taskc.compiler.turns import history_turns
from taskc.compiler.data import DataError, Split, read_split
from taskc.compiler.output import OutputDecl, resolve_output
from taskc.compiler.prefix import count_tokens, static_prefix
from taskc.compiler.prompts import RenderError, check_template, format_instructions, render
from taskc.compiler.render_check import render_problem, render_rows
from taskc.compiler.sql import Database, canonical_gold, database_grammar, open_database
from taskc.constraints.ir import Constraint
from taskc.constraints.lower import engine_settings
from taskc.errors import Diagnostic, SpecError
from taskc.spec.load import LoadedSpec, load_spec
from taskc.spec.paths import OutsideProject, row_path_problem, template_folder

DEFAULT_METRIC = {"label": "exact_match", "tool_call": "tool_call_equivalence", "object": "json_match",
                  "sql": "execution_match", "text": "exact_match"}
MAX_ROW_ERRORS = 20


def compile_spec(path: str | Path, allow_outside: tuple[str | Path, ...] = ()) -> Contract:
    """Load, check and compile a spec; raise SpecError listing every problem found.

    Checks go on past a failed section wherever the later check does not depend on it, so one
    run reports the shape, template, metric and data problems together. Every file the spec
    names must lie inside its project root or `allow_outside` (taskc.spec.paths), and every
    row's prompts are rendered once here, so a template that cannot render is an error too."""
    loaded = load_spec(path, allow_outside)
    problems: list[Diagnostic] = list(loaded.problems)
    sections = loaded.sections
    inputs = sections.get("inputs")
    output = None
    if loaded.output is not None:
        output, more = resolve_output(loaded)
        problems.extend(more)
    prompt = sections.get("prompt")
    raw_inputs = loaded.source.data.get("inputs")
    raw_prompt = loaded.source.data.get("prompt")
    if isinstance(raw_inputs, dict) and isinstance(raw_prompt, dict):
        raw_output = loaded.source.data.get("output")
        # the kind as written, so a problem elsewhere in `output` does not also flag {{ schema }}
        written_kind = raw_output.get("kind") if isinstance(raw_output, dict) else None
        provided = template_names(raw_inputs, _kind(loaded) or written_kind)
        for key in ("system", "user"):
            text = raw_prompt.get(key)
            if isinstance(text, str):
                problems.extend(check_template(loaded.source, ("prompt", key), text, provided))
    if prompt is not None and prompt.user is None and inputs is not None and not any(v.type == "messages" for v in inputs.values()):
        problems.append(loaded.source.at(("prompt",), "missing required field 'user' in prompt (only a messages input can stand in for it)", key=True))
    if _kind(loaded) == "sql" and loaded.output is not None and inputs is not None:
        problems.extend(check_template(loaded.source, ("output", "database"), loaded.output.database, set(inputs)))
    metrics: list[dict[str, Any]] = []
    if _kind(loaded) is not None and "metric" in sections and "metrics" in sections:
        metrics, more = _metrics(loaded)
        problems.extend(more)
    splits: dict[str, Split] = {}
    data = sections.get("data")
    if data is not None:
        for name in ("test", "train"):
            declared = getattr(data, name)
            if declared is None:
                continue
            try:
                splits[name] = read_split(name, declared, loaded.base_dir, loaded.source.path, loaded.project)
            except DataError as exc:
                problems.extend(exc.diagnostics or [loaded.source.at(("data", name, "file"), str(exc))])
        few = prompt.few_shot if prompt is not None else None
        if few is not None and few.count > 0 and data.train is None:
            problems.append(loaded.source.at(("prompt", "few_shot"), "few_shot draws from the train split, but data has no train"))
    gold: dict[str, tuple[Any, ...]] = {}
    rows: dict[str, Split] = {}
    if inputs is not None:
        for name, split in splits.items():
            renamed, values, more = _rows(loaded, split, output)
            problems.extend(more)
            rows[name], gold[name] = renamed, values
    if problems or output is None:
        raise SpecError(_unique(problems) or [loaded.source.at((), "invalid spec")])
    databases, row_dbs, problems = _databases(loaded, rows) if output.kind == "sql" else ({}, {}, [])
    if problems:
        raise SpecError(problems)
    problems = render_rows(loaded, output, rows, databases, row_dbs)
    if problems:
        raise SpecError(problems)
    try:
        return _assemble(loaded, output, rows, gold, metrics, databases, row_dbs)
    except RenderError as exc:  # every row rendered above; kept so no render can end in a traceback
        raise SpecError([loaded.source.at(("prompt",), f"prompt cannot be rendered: {exc}")]) from None


def _kind(loaded: LoadedSpec) -> str | None:
    return loaded.output.kind if loaded.output is not None else None


def _unique(problems: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats; the spec's own problems in file order, then those in data files."""
    seen = list(dict.fromkeys(problems))
    spec_path = seen[0].path if seen else ""
    own = sorted(p for p in seen if p.path == spec_path)
    return own + [p for p in seen if p.path != spec_path]


def _metrics(loaded: LoadedSpec) -> tuple[list[dict[str, Any]], list[Diagnostic]]:
    from taskc.metrics import METRIC_NAMES, option_errors

    spec = loaded.spec
    src = loaded.source
    if spec.metric is not None and spec.metrics is not None:
        return [], [src.at(("metrics",), "use either 'metric' or 'metrics', not both", key=True)]
    if spec.metrics is not None:
        entries, base = list(spec.metrics), ("metrics",)
    elif spec.metric is not None:
        entries, base = [spec.metric], ("metric",)
    else:
        entries, base = [DEFAULT_METRIC[loaded.output.kind]], None
    out: list[dict[str, Any]] = []
    problems: list[Diagnostic] = []
    for i, entry in enumerate(entries):
        where = base if base == ("metric",) else (base + (i,) if base else ())
        if isinstance(entry, str):
            name, options = entry, {}
        elif len(entry) == 1:
            name, options = next(iter(entry.items()))
            options = options or {}
            where = where + (name,)
        else:
            problems.append(src.at(where, "a metric is a name or {name: {options}} with exactly one name"))
            continue
        if name not in METRIC_NAMES:
            problems.append(src.at(where, f"unknown metric '{name}' (known: {', '.join(sorted(METRIC_NAMES))})", key=isinstance(entry, dict)))
            continue
        if not isinstance(options, dict):
            problems.append(src.at(where, f"options of metric '{name}' must be a mapping"))
            continue
        for key, message in option_errors(name, options):
            problems.append(src.at(where + ((key,) if key in options else ()), message, key=key in options))
        out.append({"name": name, "options": options})
    return out, problems


def _rows(loaded: LoadedSpec, split: Split, output: OutputDecl | None) -> tuple[Split, tuple[Any, ...], list[Diagnostic]]:
    """Rename columns to input names, check every input and the answer exist, parse gold
    (when the output declaration resolved)."""
    declared = getattr(loaded.sections["data"], split.name)
    columns = declared.columns
    src = loaded.source
    problems: list[Diagnostic] = []
    inputs = loaded.sections["inputs"]
    names = list(inputs) + ["answer"]
    for key in columns:
        if key not in names:
            problems.append(src.at(("data", split.name, "columns", key), f"columns entry '{key}' is not an input or 'answer' (inputs: {', '.join(inputs)})", key=True))
    mapping = {name: columns.get(name, name) for name in names}
    present = set(split.fields)
    for name, column in mapping.items():
        if column in present or not split.rows:
            continue
        if name in columns:
            where = ("data", split.name, "columns", name)
            problems.append(src.at(where, f"column '{column}' not found in {split.shown} (columns: {', '.join(split.fields)})"))
        else:
            what = "the gold answer" if name == "answer" else f"input '{name}'"
            problems.append(src.at(("data", split.name, "file"), f"{split.shown} has no column '{column}' for {what} (columns: {', '.join(split.fields)}); map it with columns: {{{name}: ...}}"))
    if problems or output is None:
        return split, (), problems
    renamed = tuple({name: row.get(column) for name, column in mapping.items()} for row in split.rows)
    values: list[Any] = []
    errors = _check_histories(loaded, split, renamed, problems)
    for i, row in enumerate(renamed):
        value, problem = output.parse_gold(row["answer"])
        if problem:
            errors += 1
            if errors <= MAX_ROW_ERRORS:
                problems.append(split.where(i, f"{problem} ({split.name} row {i})"))
        values.append(value)
    if errors > MAX_ROW_ERRORS:
        problems.append(split.where(len(renamed) - 1, f"... and {errors - MAX_ROW_ERRORS} more data problems in {split.name}"))
    new_split = Split(name=split.name, path=split.path, shown=split.shown, rows=renamed, lines=split.lines,
                      fields=tuple(names), sha256=split.sha256)
    return new_split, tuple(values), problems


def _check_histories(loaded: LoadedSpec, split: Split, rows, problems: list[Diagnostic]) -> int:
    """Every `messages` input parses as a chat history; without a user template it must end
    with the user's turn. Returns the number of bad rows."""
    names = [k for k, v in loaded.sections["inputs"].items() if v.type == "messages"]
    prompt = loaded.sections.get("prompt")
    needs_user_last = prompt is not None and prompt.user is None
    bad = 0
    for i, row in enumerate(rows):
        turns: list[dict[str, str]] = []
        try:
            for name in names:
                turns.extend(history_turns(row.get(name)))
        except ValueError as exc:
            bad += 1
            if bad <= MAX_ROW_ERRORS:
                problems.append(split.where(i, f"{exc} ({split.name} row {i})"))
            continue
        if needs_user_last and (not turns or turns[-1]["role"] != "user"):
            bad += 1
            if bad <= MAX_ROW_ERRORS:
                problems.append(split.where(i, f"the conversation must end with a user turn when prompt.user is not set ({split.name} row {i})"))
    return bad


def _databases(loaded: LoadedSpec, rows: dict[str, Split]):
    """Open each row's database. The template is rendered from the row, so the row chooses the
    file: it must stay inside the template's folder (and the project root); it is opened
    read-only and nothing is created (a file that does not exist is an error at its row)."""
    template = loaded.output.database
    folder = template_folder(template)
    databases: dict[str, Database] = {}
    row_dbs: dict[str, tuple[str | None, ...]] = {}
    problems: list[Diagnostic] = []
    refused: set[str] = set()
    names = list(loaded.spec.inputs)
    for name, split in rows.items():
        keys: list[str | None] = []
        for i, row in enumerate(split.rows):
            try:
                key = render(template, {k: row.get(k) for k in names}).strip()
            except RenderError as exc:
                problems.append(render_problem(loaded, ("output", "database"), template, exc, f"{name} row {i}"))
                break
            keys.append(key)
            if key in databases or key in refused:
                continue
            problem = row_path_problem(loaded.base_dir, folder, key)
            try:
                if problem:
                    raise OutsideProject(f"database {problem}")
                path = loaded.project.confine(loaded.base_dir, key, "database")
                databases[key] = open_database(key, path)
            except (OSError, sqlite3.Error, OutsideProject) as exc:
                refused.add(key)
                if isinstance(exc, OutsideProject):
                    reason = str(exc)
                elif isinstance(exc, FileNotFoundError):
                    reason = f"database not found: {key}"
                else:
                    reason = f"database unreadable: {key}: {exc}"
                problems.append(split.where(i, f"{reason} ({name} row {i})"))
        row_dbs[name] = tuple(keys)
    return databases, row_dbs, problems


def _few_shot(loaded: LoadedSpec, rows: dict[str, Split], gold, output: OutputDecl, body: dict[str, Any],
              ddl_of) -> dict[str, Any]:
    few = loaded.spec.prompt.few_shot
    if few is None or few.count == 0:
        return {}
    split = rows[few.from_]
    order = sorted(range(len(split.rows)), key=lambda i: hashlib.sha256(f"{few.seed}:{i}".encode()).hexdigest())
    examples = []
    for i in order[: few.count]:
        inputs = {k: split.rows[i].get(k) for k in loaded.spec.inputs}
        variables = template_variables(body, inputs, ddl_of(few.from_, i))
        examples.append({"index": i, "turns": row_turns(body, inputs, variables), "assistant": output.serialize(gold[few.from_][i])})
    return {"count": few.count, "from": few.from_, "seed": few.seed, "examples": examples}


def _assemble(loaded, output, rows, gold, metrics, databases, row_dbs) -> Contract:
    spec = loaded.spec
    constraints: dict[str | None, Constraint | None] = {}
    canonical = None
    if output.kind == "sql":
        form = output.grammar or "canonical"
        if form == "canonical":  # gold answers in canonical SQL (train.jsonl, verify, few-shot)
            canonical = canonical_gold(gold, row_dbs, databases)
            output = replace(output, sql_canonical=MappingProxyType(canonical.texts))
        for key, db in sorted(databases.items()):
            constraints[key] = Constraint("grammar", grammar=database_grammar(db, form))
        constraint_json: Any = {"type": "grammar", "syntax": "lark", "per_database": {k: c.grammar for k, c in constraints.items()}}
    else:
        constraints[None] = output.constraint()
        constraint_json = constraints[None].to_dict() if constraints[None] else None

    def ddl_of(split: str, i: int) -> str | None:
        return databases[row_dbs[split][i]].ddl if output.kind == "sql" else None

    def inputs_of(split: str, i: int) -> dict[str, Any]:
        return {k: rows[split].rows[i].get(k) for k in spec.inputs}

    inputs = {k: v.model_dump(exclude_none=True) for k, v in spec.inputs.items()}
    prompt = {"system": spec.prompt.system, "user": spec.prompt.user, "format_instructions": format_instructions(output)}
    shots = _few_shot(loaded, rows, gold, output, {"inputs": inputs, "output": output.to_dict(), "prompt": prompt}, ddl_of)
    body: dict[str, Any] = {
        "format": 1,
        "name": spec.name,
        "description": spec.description,
        "inputs": inputs,
        "output": output.to_dict(),
        "schema": output.strict_schema,
        "validate_schema": output.validate_schema,
        "constraint": constraint_json,
        "engine": engine_settings(output.kind) if constraint_json else {},
        "prompt": {**prompt, "few_shot": shots},
        "data": {
            name: {"file": getattr(spec.data, name).file, "sha256": split.sha256, "rows": len(split.rows),
                   "columns": dict(getattr(spec.data, name).columns)}
            for name, split in rows.items()
        },
        "databases": {k: {"sha256": db.sha256} for k, db in sorted(databases.items())},
        "metrics": metrics,
        "generation": spec.generation.model_dump(exclude_none=True),
        **_judges(metrics),
    }
    n_test = len(rows["test"].rows)
    group = (lambda i: row_dbs["test"][i]) if output.kind == "sql" else None
    prefix, text = static_prefix(lambda i: render_messages(body, inputs_of("test", i), ddl_of("test", i)), n_test, group)
    body = {**body, "prefix": prefix}
    tokens = count_tokens(text) if n_test else None
    return Contract(
        id=contract_hash(body), body=body, loaded=loaded, output=output, splits=rows, gold=gold,
        databases=databases, row_databases=row_dbs, constraints=constraints,
        analysis={"prefix_tokens": tokens, "tokenizer": "qwen" if tokens is not None else None,
                  "source_files": dict(sorted(output.files.items())),
                  **({"sql_canonical": canonical.summary()} if canonical is not None else {})},
    )


def _judges(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Each llm_judge's prompt, compiled into the contract (it decides scores, so it is hashed)."""
    if not any(m["name"] == "llm_judge" for m in metrics):
        return {}
    from taskc.metrics.llm_judge import JUDGE_SCHEMA, JUDGE_SYSTEM, JUDGE_USER

    return {"judge": {"system": JUDGE_SYSTEM, "user": JUDGE_USER, "schema": JUDGE_SCHEMA}}
