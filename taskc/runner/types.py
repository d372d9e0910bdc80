"""Frozen values passed between the runner's stages: Request -> Result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskc.constraints.ir import Constraint


@dataclass(frozen=True)
class Request:
    """One model call for one test row (and one repeat), as the contract defines it.

    `messages` are chat messages (`{"role": "system"|"user"|"assistant", "content": str}`, the
    system prompt first when there is one). `constraint` is the decoding constraint for this row
    (None for text). `tools` holds the contract's tools for tool_call tasks (each
    `{"name", "description", "parameters"}`), `strict_schema` the provider-strict JSON Schema of
    the output (None for label/sql/text), `generation` the sampling settings.
    """

    index: int
    repeat: int
    messages: tuple[dict[str, Any], ...]
    constraint: Constraint | None
    output_kind: str
    generation: dict[str, Any]
    messages_hash: str
    tools: tuple[dict[str, Any], ...] = ()
    strict_schema: dict[str, Any] | None = None
    name: str = "output"


@dataclass(frozen=True)
class Usage:
    """Token counts as the provider reported them (0 where it reported none)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0


@dataclass(frozen=True)
class Result:
    """What one request produced: raw text (or an error), usage, timing, attempts."""

    index: int
    repeat: int
    raw: str | None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    attempts: int = 1
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
