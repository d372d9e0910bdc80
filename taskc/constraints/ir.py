"""The one intermediate form for output constraints.

Every output kind compiles to at most one `Constraint`; each target (vLLM, Outlines, xgrammar,
llguidance, OpenAI, Anthropic) lowers it in its own module. `None` means unconstrained (text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

ConstraintType = Literal["choice", "json_schema", "regex", "grammar"]


@dataclass(frozen=True)
class Constraint:
    """A decoding constraint. Exactly one payload field is set, matching `type`.

    - choice: `choices`, the exact strings allowed;
    - json_schema: `schema_json`, a JSON Schema as canonical JSON text (text keeps it hashable
      and immutable; `schema` parses it);
    - regex: `pattern`;
    - grammar: `grammar`, a Lark grammar whose start rule is `start`.
    """

    type: ConstraintType
    choices: tuple[str, ...] | None = None
    schema_json: str | None = None
    pattern: str | None = None
    grammar: str | None = None

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of a json_schema constraint, as a fresh dict."""
        if self.schema_json is None:
            raise ValueError(f"a {self.type} constraint has no JSON Schema")
        return json.loads(self.schema_json)

    def to_dict(self) -> dict[str, Any]:
        """The constraint as it appears in contract.json."""
        if self.type == "choice":
            return {"type": "choice", "choices": list(self.choices or ())}
        if self.type == "json_schema":
            return {"type": "json_schema", "schema": self.schema}
        if self.type == "regex":
            return {"type": "regex", "pattern": self.pattern}
        return {"type": "grammar", "syntax": "lark", "grammar": self.grammar}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Constraint":
        """Inverse of `to_dict`."""
        kind = data["type"]
        if kind == "choice":
            return cls("choice", choices=tuple(data["choices"]))
        if kind == "json_schema":
            return cls.json(data["schema"])
        if kind == "regex":
            return cls("regex", pattern=data["pattern"])
        if kind == "grammar":
            return cls("grammar", grammar=data["grammar"])
        raise ValueError(f"unknown constraint type {kind!r}")

    @classmethod
    def json(cls, schema: dict[str, Any]) -> "Constraint":
        """A json_schema constraint; key order of the schema is kept (it fixes output order)."""
        return cls("json_schema", schema_json=json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
