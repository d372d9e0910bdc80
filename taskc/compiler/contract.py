"""The contract: the one frozen value every backend and every metric works from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from taskc.common.encoding import canonical_json, messages_hash, sha256_hex
from taskc.compiler.requests import GenerateConfig, Request

if TYPE_CHECKING:  # annotations only: a run from a cached contract never imports the spec layer or Jinja
    from taskc.compiler.data import Split
    from taskc.compiler.output import OutputDecl
    from taskc.compiler.sql import Database
    from taskc.constraints.ir import Constraint
    from taskc.spec.load import LoadedSpec


def contract_hash(body: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, compact): formatting and key order don't count."""
    return sha256_hex(canonical_json(body))


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

    @property
    def generation(self) -> GenerateConfig:
        """The contract's sampling settings."""
        return GenerateConfig.of(self.body["generation"])

    def inputs_of(self, split: str, index: int) -> dict[str, Any]:
        """The input values of one row."""
        row = self.splits[split].rows[index]
        return {name: row.get(name) for name in self.body["inputs"]}

    def database_of(self, split: str, index: int) -> Database | None:
        """The database a sql row runs on."""
        key = self.row_databases.get(split, ())[index] if split in self.row_databases else None
        return self.databases.get(key) if key else None

    def _ddl(self, split: str, index: int) -> str | None:
        db = self.database_of(split, index)
        return db.ddl if db else None

    def variables(self, split: str, index: int) -> dict[str, Any]:
        """What the templates see for one row: its inputs, the format instructions, the schema."""
        from taskc.compiler.messages import template_variables

        return template_variables(self.body, self.inputs_of(split, index), self._ddl(split, index))

    def user_message(self, split: str, index: int) -> str:
        """The text of the row's last user turn (what the baseline compares)."""
        return self.turns(split, index)[-1]["content"]

    def turns(self, split: str, index: int) -> list[dict[str, str]]:
        """The row's own turns: its chat history (messages inputs), then the rendered user turn."""
        from taskc.compiler.messages import row_turns

        return row_turns(self.body, self.inputs_of(split, index), self.variables(split, index))

    def messages(self, split: str, index: int) -> list[dict[str, str]]:
        """The chat messages one row sends: system, few-shot turns, then the row's turns."""
        from taskc.compiler.messages import render_messages

        return render_messages(self.body, self.inputs_of(split, index), self._ddl(split, index))

    def messages_digest(self, split: str, index: int, messages) -> str:
        """The hash recorded with every sample of the row whose `messages` these are."""
        return messages_hash(messages)

    def constraint_for(self, split: str, index: int) -> Constraint | None:
        """The decoding constraint of one row (sql: the grammar of its database)."""
        if self.output.kind == "sql":
            key = self.row_databases[split][index]
            return self.constraints.get(key)
        return self.constraints.get(None)

    def gold_text(self, split: str, index: int) -> str:
        """The gold answer serialized exactly as the constrained decoder emits it."""
        return self.output.serialize(self.gold[split][index])

    def requests(self, split: str = "test", repeats: int = 1, limit: int | None = None,
                 generation: GenerateConfig | Mapping[str, Any] | None = None) -> tuple[Request, ...]:
        """One frozen Request per row and repeat, in row order; `generation` replaces the
        contract's sampling settings when given."""
        n = len(self.splits[split].rows)
        if limit is not None:
            n = min(n, limit)
        settings = self.generation if generation is None else GenerateConfig.of(generation)
        tools = tuple(self.output.tools)
        strict = self.body.get("schema")
        out = []
        for index in range(n):
            messages = tuple(self.messages(split, index))
            digest = self.messages_digest(split, index, messages)
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
