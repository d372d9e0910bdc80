"""Compile a spec into a Contract, reporting every problem (spec, templates, data) in one pass."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from taskc.compiler.contract import ENGINE_SETTINGS, Contract, contract_hash, row_turns
from taskc.compiler.turns import history_turns
from taskc.compiler.data import DataError, Split, read_split
from taskc.compiler.output import OutputDecl, resolve_output
from taskc.compiler.prefix import count_tokens, static_prefix
from taskc.compiler.prompts import check_template, format_instructions, render
from taskc.compiler.sql import Database, database_grammar, open_database
from taskc.constraints.ir import Constraint
from taskc.errors import Diagnostic, SpecError
from taskc.spec.load import LoadedSpec, load_spec

DEFAULT_METRIC = {"label": "exact_match", "tool_call": "tool_call_equivalence", "object": "json_match",
                  "sql": "execution_match", "text": "exact_match"}
MAX_ROW_ERRORS = 20


def compile_spec(path: str | Path) -> Contract:
    """Load, check and compile a spec; raise SpecError listing every problem found.

    Checks go on past a failed section wherever the later check does not depend on it, so one
    run reports the shape, template, metric and data problems together."""
    loaded = load_spec(path)
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
        provided = set(raw_inputs) | {"format_instructions"} | ({"schema"} if _kind(loaded) == "sql" else set())
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
                splits[name] = read_split(name, declared, loaded.base_dir, loaded.source.path)
            except DataError as exc:
                problems.append(loaded.source.at(("data", name, "file"), str(exc)))
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
    return _assemble(loaded, output, rows, gold, metrics, databases, row_dbs)


def _kind(loaded: LoadedSpec) -> str | None:
    return loaded.output.kind if loaded.output is not None else None


def _unique(problems: list[Diagnostic]) -> list[Diagnostic]:
    """Drop repeats; the spec's own problems in file order, then those in data files."""
    seen = list(dict.fromkeys(problems))
    spec_path = seen[0].path if seen else ""
    own = sorted(p for p in seen if p.path == spec_path)
    return own + [p for p in seen if p.path != spec_path]


def _metrics(loaded: LoadedSpec) -> tuple[list[dict[str, Any]], list[Diagnostic]]:
    try:
        from taskc.metrics import METRIC_NAMES, option_errors
    except ImportError:  # TEMP until taskc.metrics lands
        METRIC_NAMES = {"exact_match", "f1", "tool_call_equivalence", "json_match", "execution_match", "llm_judge"}
        def option_errors(name, options):
            return []

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
    template = loaded.output.database
    databases: dict[str, Database] = {}
    row_dbs: dict[str, tuple[str | None, ...]] = {}
    problems: list[Diagnostic] = []
    missing: set[str] = set()
    for name, split in rows.items():
        keys = []
        for i, row in enumerate(split.rows):
            key = render(template, {k: row.get(k) for k in loaded.spec.inputs}).strip()
            keys.append(key)
            if key in databases or key in missing:
                continue
            try:
                databases[key] = open_database(key, (loaded.base_dir / key).resolve())
            except (OSError, sqlite3.Error) as exc:
                missing.add(key)
                reason = "not found" if isinstance(exc, FileNotFoundError) else f"unreadable: {exc}"
                problems.append(split.where(i, f"database {reason}: {key} ({name} row {i})"))
        row_dbs[name] = tuple(keys)
    return databases, row_dbs, problems


def _few_shot(loaded: LoadedSpec, rows: dict[str, Split], gold, output: OutputDecl, variables) -> dict[str, Any]:
    few = loaded.spec.prompt.few_shot
    if few is None or few.count == 0:
        return {}
    split = rows[few.from_]
    order = sorted(range(len(split.rows)), key=lambda i: hashlib.sha256(f"{few.seed}:{i}".encode()).hexdigest())
    chosen = order[: few.count]
    examples = []
    body = {"inputs": {k: v.model_dump(exclude_none=True) for k, v in loaded.spec.inputs.items()},
            "prompt": {"user": loaded.spec.prompt.user}}
    for i in chosen:
        values = dict(variables(few.from_, i))
        inputs = {k: split.rows[i].get(k) for k in loaded.spec.inputs}
        examples.append({"index": i, "turns": row_turns(body, inputs, values), "assistant": output.serialize(gold[few.from_][i])})
    return {"count": few.count, "from": few.from_, "seed": few.seed, "examples": examples}


def _assemble(loaded, output, rows, gold, metrics, databases, row_dbs) -> Contract:
    spec = loaded.spec
    instructions = format_instructions(output)
    constraints: dict[str | None, Constraint | None] = {}
    if output.kind == "sql":
        for key, db in sorted(databases.items()):
            constraints[key] = Constraint("grammar", grammar=database_grammar(db))
        constraint_json: Any = {"type": "grammar", "syntax": "lark", "per_database": {k: c.grammar for k, c in constraints.items()}}
    else:
        constraints[None] = output.constraint()
        constraint_json = constraints[None].to_dict() if constraints[None] else None

    def variables(split: str, i: int) -> dict[str, Any]:
        values = {k: rows[split].rows[i].get(k) for k in spec.inputs}
        values["format_instructions"] = instructions
        if output.kind == "sql":
            values["schema"] = databases[row_dbs[split][i]].ddl
        return values

    body: dict[str, Any] = {
        "format": 1,
        "name": spec.name,
        "description": spec.description,
        "inputs": {k: v.model_dump(exclude_none=True) for k, v in spec.inputs.items()},
        "output": output.to_dict(),
        "schema": output.strict_schema,
        "validate_schema": output.validate_schema,
        "constraint": constraint_json,
        "engine": ENGINE_SETTINGS if constraint_json else {},
        "prompt": {
            "system": spec.prompt.system,
            "user": spec.prompt.user,
            "format_instructions": instructions,
            "few_shot": _few_shot(loaded, rows, gold, output, variables),
        },
        "data": {
            name: {"file": getattr(spec.data, name).file, "sha256": split.sha256, "rows": len(split.rows),
                   "columns": dict(getattr(spec.data, name).columns)}
            for name, split in rows.items()
        },
        "databases": {k: {"sha256": db.sha256} for k, db in sorted(databases.items())},
        "metrics": metrics,
        "generation": spec.generation.model_dump(exclude_none=True),
    }
    _add_judges(body, metrics)
    draft = Contract(id="", body=body, loaded=loaded, output=output, splits=rows, gold=gold,
                     databases=databases, row_databases=row_dbs, constraints=constraints)
    n_test = len(rows["test"].rows)
    group = (lambda i: row_dbs["test"][i]) if output.kind == "sql" else None
    body["prefix"], text = static_prefix(lambda i: draft.messages("test", i), n_test, group)
    tokens = count_tokens(text) if n_test else None
    return Contract(
        id=contract_hash(body), body=body, loaded=loaded, output=output, splits=rows, gold=gold,
        databases=databases, row_databases=row_dbs, constraints=constraints,
        analysis={"prefix_tokens": tokens, "tokenizer": "qwen" if tokens is not None else None,
                  "source_files": dict(sorted(output.files.items()))},
    )


def _add_judges(body: dict[str, Any], metrics: list[dict[str, Any]]) -> None:
    """Compile each llm_judge's prompt into the contract (it decides scores, so it is hashed)."""
    if not any(m["name"] == "llm_judge" for m in metrics):
        return
    from taskc.metrics.llm_judge import JUDGE_SCHEMA, JUDGE_SYSTEM, JUDGE_USER

    body["judge"] = {"system": JUDGE_SYSTEM, "user": JUDGE_USER, "schema": JUDGE_SCHEMA}
