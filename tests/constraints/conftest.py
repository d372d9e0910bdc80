"""Fixtures for the constraint tests: real data, real engines, the real Qwen vocabulary.

Data comes from `$TASKC_SHARED/data` (default `<repo>/../shared`). Compiled constraints are
cached for the whole session (`compiled(engine, constraint)`), so each engine sets up the
vocabulary once and compiles each constraint once. The constraints the compiler will produce are
built here by hand, following the IR's contract (taskc/constraints/ir.py).
"""

from __future__ import annotations

import csv
import json
from typing import Any, Callable

import pytest

from taskc.constraints.ir import Constraint
from taskc.constraints.sql_grammar import sql_grammar, sqlite_tables

from tests.shared_data import DATA, SPEC_EXAMPLES, need


def compact(obj: Any) -> str:
    """Canonical gold JSON: compact, non-ASCII kept."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def tool_call_constraint(tools: list[dict]) -> Constraint:
    """What the compiler produces for a tool_call output (tools unwrapped: name, parameters)."""
    branches = [
        {
            "type": "object",
            "properties": {"name": {"const": t["name"]}, "parameters": t["parameters"]},
            "required": ["name", "parameters"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    return Constraint.json({"anyOf": branches})


def canonical_call(answer: Any, tools: list[dict]) -> str:
    """Gold tool call as compact JSON: name, then parameters in the tool's `properties` order."""
    call = json.loads(answer) if isinstance(answer, str) else answer
    props = next(t for t in tools if t["name"] == call["name"])["parameters"].get("properties", {})
    params = call.get("parameters", {})
    ordered = {k: params[k] for k in props if k in params}
    ordered.update({k: v for k, v in params.items() if k not in ordered})  # unknown keys stay visible
    return compact({"name": call["name"], "parameters": ordered})


@pytest.fixture(scope="session")
def compiled() -> Callable[[str, Constraint], Any]:
    """`compiled(engine, constraint)`: a CompiledConstraint, compiled once per session."""
    from taskc.constraints.engines import get_engine

    cache: dict[tuple[str, Constraint], Any] = {}

    def get(engine: str, constraint: Constraint) -> Any:
        key = (engine, constraint)
        if key not in cache:
            cache[key] = get_engine(engine).compile(constraint)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def banking() -> dict[str, Any]:
    """banking77: the label constraint and the test rows (text, category)."""
    folder = need(DATA / "banking77")
    labels = json.loads((folder / "categories.json").read_text())
    with open(folder / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {"labels": labels, "constraint": Constraint("choice", choices=tuple(labels)), "rows": rows}


@pytest.fixture(scope="session")
def git() -> dict[str, Any]:
    """git_assistant: the 13 tools, their constraint, gold rows {split: [(index, text)]}."""
    folder = need(DATA / "git_assistant")
    doc = json.loads((folder / "job_description.json").read_text())
    tools = [t.get("function", t) for t in doc["tools"]]
    gold = {}
    for split in ("test", "train"):
        lines = (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        gold[split] = [(i, canonical_call(json.loads(line)["answer"], tools)) for i, line in enumerate(lines) if line]
    return {"tools": tools, "constraint": tool_call_constraint(tools), "gold": gold}


HOME_TOOLS = [
    {
        "name": "toggle_lights",
        "parameters": {
            "type": "object",
            "properties": {
                "room": {"type": "string", "enum": ["living_room", "bedroom", "kitchen", "bathroom", "office", "hallway"]},
                "state": {"type": "string", "enum": ["on", "off"]},
            },
            "required": ["state"],
            "additionalProperties": False,
        },
    },
    {
        "name": "set_thermostat",
        "parameters": {
            "type": "object",
            "properties": {
                "temperature": {"type": "integer", "minimum": 60, "maximum": 80},
                "mode": {"type": "string", "enum": ["heat", "cool", "auto"], "default": "auto"},
            },
            "required": ["temperature"],
            "additionalProperties": False,
        },
    },
    {
        "name": "intent_unclear",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "enum": ["ambiguous", "off_topic", "incomplete"]}},
            "required": ["reason"],
            "additionalProperties": False,
        },
    },
]


@pytest.fixture(scope="session")
def home() -> dict[str, Any]:
    """The home_control spec example: its 3 inline tools (by hand) and its 6 gold calls."""
    path = need(SPEC_EXAMPLES / "home_control.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    gold = [canonical_call(r["answer"], HOME_TOOLS) for r in rows]
    return {"tools": HOME_TOOLS, "constraint": tool_call_constraint(HOME_TOOLS), "gold": gold}


PII_TYPES = [
    "PERSON", "STREET_ADDRESS", "GPE", "ORGANIZATION", "DATE_TIME", "PHONE_NUMBER", "EMAIL_ADDRESS",
    "CREDIT_CARD", "IBAN_CODE", "NRP", "TITLE", "ZIP_CODE", "AGE", "US_SSN", "IP_ADDRESS",
    "DOMAIN_NAME", "US_DRIVER_LICENSE",
]  # fmt: skip
PII_SCHEMA = {
    "type": "object",
    "properties": {
        "redacted_text": {"type": "string", "description": "The text with each entity replaced by [ENTITY_TYPE]."},
        "entities": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"value": {"type": "string"}, "entity_type": {"type": "string", "enum": PII_TYPES}},
                "required": ["value", "entity_type"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["redacted_text", "entities"],
    "additionalProperties": False,
}


@pytest.fixture(scope="session")
def pii() -> dict[str, Any]:
    """A pii_redaction-style object schema and 100 gold objects built from Presidio's records."""
    records = json.loads(need(DATA / "pii" / "presidio_synth_dataset_v2.json").read_text(encoding="utf-8"))
    gold = []
    for rec in records[:100]:
        text, spans = rec["full_text"], sorted(rec["spans"], key=lambda s: s["start_position"])
        pieces, last = [], 0
        for s in spans:
            pieces += [text[last : s["start_position"]], f"[{s['entity_type']}]"]
            last = s["end_position"]
        pieces.append(text[last:])
        ents = [{"value": s["entity_value"], "entity_type": s["entity_type"]} for s in spans]
        gold.append(compact({"redacted_text": "".join(pieces), "entities": ents}))
    return {"schema": PII_SCHEMA, "constraint": Constraint.json(PII_SCHEMA), "gold": gold}


@pytest.fixture(scope="session")
def text2sql() -> dict[str, Any]:
    """text2sql: per database its path, tables and grammar constraints (`constraint`: the
    permissive grammar, `canonical`: the canonical one); the 484 gold rows."""
    folder = need(DATA / "text2sql")
    rows = [json.loads(line) for line in (folder / "dev.jsonl").read_text().splitlines() if line]
    dbs = {}
    for db_id in dict.fromkeys(r["db_id"] for r in rows):
        path = folder / "databases" / db_id / f"{db_id}.sqlite"
        tables = sqlite_tables(path)
        dbs[db_id] = {"path": path, "tables": tables, "constraint": Constraint("grammar", grammar=sql_grammar(tables)),
                      "canonical": Constraint("grammar", grammar=sql_grammar(tables, form="canonical"))}
    return {"rows": rows, "dbs": dbs}

