"""The requests a contract makes: one frozen `Request` per row and repeat, with typed sampling
settings (`GenerateConfig`), as every backend receives them."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from taskc.constraints.ir import Constraint


@dataclass(frozen=True)
class GenerateConfig:
    """Sampling settings of one request; None means the backend's own default.

    The spec's `generation:` section (validated there) becomes one of these; `taskc eval`
    derives the run's from it (`with_temperature`). Backends lower it by name (`get`) into their
    provider's fields, so a setting a provider lacks is simply not sent.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    max_tokens: int | None = None
    min_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    # provider-specific (OpenAI); a backend without the setting does not send it
    logit_bias: dict[str, float] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    service_tier: str | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif self.stop is not None and not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))

    @classmethod
    def of(cls, settings: "GenerateConfig | Mapping[str, Any] | None") -> "GenerateConfig":
        """A config from contract.json's `generation` mapping (or the config itself); an unknown
        setting is an error, not silently dropped."""
        if settings is None:
            return cls()
        if isinstance(settings, GenerateConfig):
            return settings
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown generation setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return cls(**dict(settings))

    def get(self, name: str, default: Any = None) -> Any:
        """The value of setting `name` (None when unset), for lowerings that map names."""
        value = getattr(self, name, None)
        return default if value is None else value

    def as_dict(self) -> dict[str, Any]:
        """The settings that are set, in field order (stop as a list), for JSON."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if f.name == "stop" else value
        return out

    def with_temperature(self, temperature: float | None) -> "GenerateConfig":
        """A copy with `temperature` set (None: the provider's default)."""
        return replace(self, temperature=temperature)


@dataclass(frozen=True)
class Request:
    """One model call for one test row (and one repeat), as the contract defines it.

    `messages` are chat messages (`{"role": "system"|"user"|"assistant", "content": str}`, the
    system prompt first when there is one). `constraint` is the decoding constraint for this row
    (None for text; for tool calls the `{"name","parameters"}` schema the compiler built).
    `tools` holds the contract's tools for tool_call tasks (each `{"name", "description",
    "parameters"}`), `strict_schema` the provider-strict JSON Schema of the output (None for
    label/sql/text), `generation` the sampling settings (a mapping is converted).
    """

    index: int
    repeat: int
    messages: tuple[dict[str, Any], ...]
    constraint: Constraint | None
    output_kind: str
    generation: GenerateConfig
    messages_hash: str
    tools: tuple[dict[str, Any], ...] = ()
    strict_schema: dict[str, Any] | None = None
    name: str = "output"

    def __post_init__(self) -> None:
        if not isinstance(self.generation, GenerateConfig):
            object.__setattr__(self, "generation", GenerateConfig.of(self.generation))
