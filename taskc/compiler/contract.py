"""The contract: the one frozen value every backend and every metric works from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from taskc.compiler.data import Split
from taskc.compiler.output import OutputDecl
from taskc.compiler.prompts import render
from taskc.compiler.schemas import canonical_json
from taskc.compiler.sql import Database
from taskc.compiler.turns import history_turns
from taskc.constraints.ir import Constraint
from taskc.spec.load import LoadedSpec

def row_turns(body: dict[str, Any], inputs: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, str]]:
    """History turns of every `messages` input (in declaration order), then the user template."""
    out: list[dict[str, str]] = []
    for name, declared in body["inputs"].items():
        if declared.get("type") == "messages":
            out.extend(history_turns(inputs.get(name)))
    user = body["prompt"].get("user")
    if user is not None:
        text = render(user, variables)
        if text.strip() or not out:
            out.append({"role": "user", "content": text})
    return out


ENGINE_SETTINGS = {"structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True}}


def contract_hash(body: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, compact): formatting and key order don't count."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Contract:
    """A compiled task: `body` is contract.json (without id), `id` its hash; the rest are the
    resolved pieces the later stages use (splits, gold values, databases)."""

    id: str
    body: dict[str, Any]
    loaded: LoadedSpec
    output: OutputDecl
    splits: dict[str, Split]
    gold: dict[str, tuple[Any, ...]]
    databases: dict[str, Database] = field(default_factory=dict)
    row_databases: dict[str, tuple[str | None, ...]] = field(default_factory=dict)
    constraints: dict[str | None, Constraint | None] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The task name."""
        return self.body["name"]

    @property
    def short_id(self) -> str:
        """The first 12 hex digits of the id, for folder names and tables."""
        return self.id[:12]

    def inputs_of(self, split: str, index: int) -> dict[str, Any]:
        """The input values of one row."""
        row = self.splits[split].rows[index]
        return {name: row.get(name) for name in self.body["inputs"]}

    def database_of(self, split: str, index: int) -> Database | None:
        """The database a sql row runs on."""
        key = self.row_databases.get(split, ())[index] if split in self.row_databases else None
        return self.databases.get(key) if key else None

    def variables(self, split: str, index: int) -> dict[str, Any]:
        """What the templates see for one row: its inputs, the format instructions, the schema."""
        variables = dict(self.inputs_of(split, index))
        variables["format_instructions"] = self.body["prompt"]["format_instructions"]
        db = self.database_of(split, index)
        if self.output.kind == "sql":
            variables["schema"] = db.ddl if db else ""
        return variables

    def user_message(self, split: str, index: int) -> str:
        """The text of the row's last user turn (what the baseline compares)."""
        return self.turns(split, index)[-1]["content"]

    def turns(self, split: str, index: int) -> list[dict[str, str]]:
        """The row's own turns: its chat history (messages inputs), then the rendered user turn."""
        return row_turns(self.body, self.inputs_of(split, index), self.variables(split, index))

    def messages(self, split: str, index: int) -> list[dict[str, str]]:
        """The chat messages one row sends: system, few-shot turns, then the row's turns."""
        prompt = self.body["prompt"]
        variables = self.variables(split, index)
        out: list[dict[str, str]] = []
        if prompt.get("system"):
            out.append({"role": "system", "content": render(prompt["system"], variables)})
        for shot in prompt.get("few_shot", {}).get("examples", []):
            out.extend(shot["turns"])
            out.append({"role": "assistant", "content": shot["assistant"]})
        out.extend(row_turns(self.body, self.inputs_of(split, index), variables))
        return out

    def constraint_for(self, split: str, index: int) -> Constraint | None:
        """The decoding constraint of one row (sql: the grammar of its database)."""
        if self.output.kind == "sql":
            key = self.row_databases[split][index]
            return self.constraints.get(key)
        return self.constraints.get(None)

    def gold_text(self, split: str, index: int) -> str:
        """The gold answer serialized exactly as the constrained decoder emits it."""
        return self.output.serialize(self.gold[split][index])

    def requests(self, split: str = "test", repeats: int = 1, limit: int | None = None, generation: dict | None = None):
        """One frozen Request per row and repeat, in row order; `generation` replaces the
        contract's sampling settings when given."""
        from taskc.runner.types import Request

        n = len(self.splits[split].rows)
        if limit is not None:
            n = min(n, limit)
        settings = dict(self.body["generation"] if generation is None else generation)
        tools = tuple(self.output.tools)
        strict = self.body.get("schema")
        out = []
        for index in range(n):
            messages = tuple(self.messages(split, index))
            digest = hashlib.sha256(canonical_json(list(messages)).encode("utf-8")).hexdigest()
            constraint = self.constraint_for(split, index)
            for repeat in range(repeats):
                out.append(
                    Request(
                        index=index, repeat=repeat, messages=messages, constraint=constraint,
                        output_kind=self.output.kind, generation=settings, messages_hash=digest,
                        tools=tools, strict_schema=strict, name=self.name,
                    )
                )
        return tuple(out)
