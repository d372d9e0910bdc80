"""The spec as pydantic models: the shape of a task spec, unknown fields rejected.

Values are checked for shape here; cross-references (templates, files, labels) are checked by
`taskc.spec.check`, which knows where each value came from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileRef(_Strict):
    """A JSON (or YAML-free) file, optionally narrowed by a JSON pointer (RFC 6901)."""

    file: StrictStr
    pointer: StrictStr = ""


class InputSpec(_Strict):
    """One input variable. The short form `name: string` means `{type: string}`; `messages` is a
    chat history spliced into the prompt as turns."""

    type: StrictStr = "string"
    description: StrictStr | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value == "messages":
            return value
        from taskc.spec.type_syntax import TypeSyntaxError, parse_type

        try:
            parse_type(value)
        except TypeSyntaxError:
            raise ValueError(
                f"unknown input type '{value}' (expected string, integer, number, boolean, messages, list[T] or {{field: T}})"
            ) from None
        return value


class ToolSpec(_Strict):
    """A tool, written inline: parameters are JSON-Schema properties, `required` lists names."""

    name: StrictStr = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
    description: StrictStr = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    required: list[StrictStr] | None = None


class OpenAITool(_Strict):
    """A tool in OpenAI's function-tool format, accepted as is."""

    type: Literal["function"]
    function: dict[str, Any]


class LabelOutput(_Strict):
    kind: Literal["label"]
    labels: Union[list[StrictStr], FileRef]
    description: StrictStr | None = None


class ToolCallOutput(_Strict):
    kind: Literal["tool_call"]
    tools: Union[list[Union[OpenAITool, ToolSpec]], FileRef]
    description: StrictStr | None = None


class ObjectOutput(_Strict):
    kind: Literal["object"]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    json_schema: dict[str, Any] | None = None
    description: StrictStr | None = None


class SqlOutput(_Strict):
    """`grammar`: ``canonical`` (default) writes gold queries in taskc's canonical SQL
    (taskc.constraints.canonical_sql) and constrains decoding to that one spelling;
    ``permissive`` keeps gold as written and allows any spelling SQLite reads."""

    kind: Literal["sql"]
    dialect: Literal["sqlite"] = "sqlite"
    database: StrictStr
    grammar: Literal["canonical", "permissive"] = "canonical"
    description: StrictStr | None = None


class TextOutput(_Strict):
    kind: Literal["text"]
    description: StrictStr | None = None


OUTPUT_MODELS: dict[str, type[_Strict]] = {
    "label": LabelOutput,
    "tool_call": ToolCallOutput,
    "object": ObjectOutput,
    "sql": SqlOutput,
    "text": TextOutput,
}


class FewShot(_Strict):
    """`count` examples drawn deterministically (by `seed`) from a split."""

    count: StrictInt = Field(ge=0, le=64)
    from_: Literal["train"] = Field(default="train", alias="from")
    seed: StrictInt = 0


class PromptSpec(_Strict):
    """`user` may be left out when a `messages` input ends with the user's turn."""

    system: StrictStr | None = None
    user: StrictStr | None = None
    few_shot: FewShot | None = None


class DataFile(_Strict):
    """A data split: csv, jsonl or json (a list of objects); `columns` renames fields."""

    file: StrictStr
    columns: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    format: Literal["csv", "jsonl", "json"] | None = None
    encoding: StrictStr = "utf-8"
    pointer: StrictStr = ""
    limit: StrictInt | None = Field(default=None, ge=1)


class DataSpec(_Strict):
    test: DataFile
    train: DataFile | None = None


class Generation(_Strict):
    """Sampling settings; None means the backend's default."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: StrictInt | None = Field(default=None, ge=-1)
    max_tokens: StrictInt = Field(default=256, ge=1, le=65536)
    seed: StrictInt | None = None
    stop: list[StrictStr] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    repetition_penalty: float | None = Field(default=None, gt=0, le=2)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class TrainSpec(_Strict):
    """Fine-tuning settings for `taskc train` / `taskc distill` (every field optional; flags on
    the command line win). Not part of the contract: how a student is trained does not change
    what it is asked."""

    method: Literal["lora", "full"] | None = None
    lora_rank: StrictInt | None = Field(default=None, ge=1, le=512)
    lora_alpha: StrictInt | None = Field(default=None, ge=1)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1)
    target_modules: Union[Literal["all-linear"], list[StrictStr]] | None = None
    epochs: float | None = Field(default=None, gt=0, le=1000)
    learning_rate: float | None = Field(default=None, gt=0, lt=1)
    batch_size: StrictInt | None = Field(default=None, ge=1, le=4096)
    gradient_accumulation_steps: StrictInt | None = Field(default=None, ge=1, le=4096)
    max_length: StrictInt | None = Field(default=None, ge=8, le=1_048_576)
    max_steps: StrictInt | None = Field(default=None, ge=1)
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    weight_decay: float | None = Field(default=None, ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] | None = None
    seed: StrictInt | None = None
    precision: Literal["auto", "bf16", "fp16", "fp32"] | None = None


def _check_name(value: str) -> str:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", value):
        raise ValueError(f"task name '{value}' must be 1-64 lower-case letters, digits, '_', '.' or '-'")
    return value


TaskName = Annotated[StrictStr, AfterValidator(_check_name)]


class Spec(_Strict):
    """A whole task spec (format version `taskc: 1`)."""

    taskc: Literal[1]
    name: TaskName
    description: StrictStr = ""
    inputs: dict[StrictStr, InputSpec]
    output: dict[str, Any]
    prompt: PromptSpec
    data: DataSpec
    metric: Union[StrictStr, dict[StrictStr, Any], None] = None
    metrics: list[Union[StrictStr, dict[StrictStr, Any]]] | None = None
    generation: Generation = Field(default_factory=Generation)
    train: TrainSpec | None = None

    @field_validator("inputs", mode="before")
    @classmethod
    def _short_inputs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"type": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value
