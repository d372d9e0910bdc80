"""Frozen values passed between the runner's stages: Request (made by the compiler, see
`taskc.compiler.requests`) -> Result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskc.compiler.requests import GenerateConfig, Request

__all__ = ["GenerateConfig", "Request", "Result", "Usage"]


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
