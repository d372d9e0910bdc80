"""Lowering a `Constraint` to each local decoding target: vLLM, Outlines, xgrammar, llguidance.

Every engine is imported lazily, inside the function that needs it, so importing this module
costs nothing. JSON is always compact: no free whitespace anywhere (a random or weak model
otherwise loops on whitespace until max_tokens), items separated by ``,`` and keys by ``:``,
exactly the canonical gold form ``json.dumps(..., separators=(",", ":"))``.

vLLM (>= 0.12) takes constraints only in ``structured_outputs``; the old ``guided_json`` /
``guided_choice`` / ``guided_regex`` / ``guided_grammar`` fields are silently ignored there (the
request runs unconstrained), so nothing here ever produces a ``guided_*`` key. vLLM's per-request
``disable_any_whitespace`` is ignored too: whitespace must be turned off for the whole engine,
with the contract's `engine` block (`engine_settings(kind)`: offline
``LLM(structured_outputs_config=...)``) or `vllm_server_flags(engine)` / `vllm_server_args(engine)`
(the OpenAI-compatible server). The backend (xgrammar or guidance) is chosen per output kind
(`ENGINE_BACKENDS`), from the engine throughput measured by bench/engine_throughput.py.

One JSON Schema keyword is lowered by taskc rather than by xgrammar: a string's ``minLength`` /
``maxLength``, which xgrammar 0.2.8 turns into a class without JSON escapes (`xgrammar_json`).
xgrammar, and vLLM's xgrammar backend, get taskc's EBNF for such schemas instead of the schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .ir import Constraint
from .xgrammar_json import ebnf_for_json

#: ``LLM(..., structured_outputs_config=VLLM_ENGINE_CONFIG)``: the xgrammar engine config (what a
#: vLLM engine or server is started with when no contract says otherwise, e.g. the test fixtures).
VLLM_ENGINE_CONFIG: dict[str, Any] = {"backend": "xgrammar", "disable_any_whitespace": True}
#: The llguidance backend, same whitespace rule.
VLLM_GUIDANCE_CONFIG: dict[str, Any] = {"backend": "guidance", "disable_any_whitespace": True}
_VLLM_CONFIG_JSON = json.dumps(VLLM_ENGINE_CONFIG, separators=(",", ":"))
#: Flags for ``python -m vllm.entrypoints.openai.api_server`` (shell syntax), xgrammar config.
VLLM_SERVER_FLAGS = f"--structured-outputs-config '{_VLLM_CONFIG_JSON}'"
#: llguidance JSON options for compact output (see llguidance docs/json_schema.md).
LLGUIDANCE_JSON_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ",",
    "key_separator": ":",
}

#: The vLLM structured-output backend a contract asks for, per output kind, from
#: ``bench/engine_throughput.py`` (bench/RESULTS.md, "Engine throughput"): the one whose mask
#: work takes the smaller share of the constrained engine's time in the same runs. SQL:
#: guidance (llguidance's lexer masks the canonical grammar several times cheaper than
#: xgrammar, which also lets UTF-8-encoded surrogates into string literals); labels, tool calls
#: and objects: xgrammar (precomputed masks, microseconds). Kinds that share a constraint type
#: share a backend (tool_call and object are both JSON Schema), so `backend_for` can tell the
#: backend from a constraint alone.
ENGINE_BACKENDS: dict[str, str] = {"label": "xgrammar", "tool_call": "xgrammar", "object": "xgrammar", "sql": "guidance"}
_ENGINE_CONFIGS = {"xgrammar": VLLM_ENGINE_CONFIG, "guidance": VLLM_GUIDANCE_CONFIG}
_KIND_OF_TYPE = {"choice": "label", "json_schema": "tool_call", "regex": "label", "grammar": "sql"}


def backend_for(c: Constraint | None) -> str:
    """The structured-output backend a contract chooses for this constraint's output kind."""
    if c is None:
        return ENGINE_BACKENDS["label"]
    return ENGINE_BACKENDS[_KIND_OF_TYPE[c.type]]


def engine_settings(kind: str) -> dict[str, Any]:
    """The contract's `engine` block for a constrained output kind: the vLLM engine-wide
    structured-outputs configuration every row is decoded under (a fresh copy)."""
    if kind not in ENGINE_BACKENDS:
        raise ValueError(f"no structured-output backend for output kind {kind!r}")
    return {"structured_outputs_config": dict(_ENGINE_CONFIGS[ENGINE_BACKENDS[kind]])}


def _config_json(engine: dict[str, Any] | None) -> str:
    config = (engine or {}).get("structured_outputs_config") or VLLM_ENGINE_CONFIG
    return json.dumps(config, separators=(",", ":"))


def vllm_server_args(engine: dict[str, Any] | None = None) -> list[str]:
    """The server flags for a contract's `engine` block (default: `VLLM_ENGINE_CONFIG`) as an argv
    list (for ``subprocess``, no shell quoting)."""
    return ["--structured-outputs-config", _config_json(engine)]


def vllm_server_flags(engine: dict[str, Any] | None = None) -> str:
    """The same flags in shell syntax (``--structured-outputs-config '{...}'``)."""
    return f"--structured-outputs-config '{_config_json(engine)}'"


def _check(c: Constraint) -> None:
    payload = {"choice": c.choices, "json_schema": c.schema_json, "regex": c.pattern, "grammar": c.grammar}
    if c.type not in payload:
        raise ValueError(f"unknown constraint type {c.type!r}")
    if payload[c.type] is None:
        raise ValueError(f"a {c.type} constraint without its payload")
    if c.type == "choice" and not c.choices:
        raise ValueError("a choice constraint needs at least one choice")


def to_vllm_structured_outputs(c: Constraint | None, backend: str | None = None) -> dict[str, Any] | None:
    """The ``structured_outputs`` request field: ``{"choice": [...]}``, ``{"json": schema}``,
    ``{"regex": p}`` or ``{"grammar": lark}``; None for an unconstrained (text) output.

    `backend` is the engine's structured-output backend (default: the one a contract chooses for
    this constraint, `backend_for`). For xgrammar (and vLLM's "auto", which picks it), a JSON
    schema with a length-bounded string is sent as the EBNF of
    `xgrammar_json.ebnf_for_json` (xgrammar's own lowering of those strings refuses JSON escapes);
    without xgrammar installed it stays ``{"json": schema}``.

    Send it as ``extra_body={"structured_outputs": ...}`` with the OpenAI SDK, or use
    `to_vllm_params` offline.
    """
    if c is None:
        return None
    _check(c)
    backend = backend_for(c) if backend is None else backend
    if c.type == "choice":
        return {"choice": list(c.choices or ())}
    if c.type == "json_schema":
        if backend in ("xgrammar", "auto"):
            try:
                ebnf = ebnf_for_json(c.schema_json)
            except ImportError:
                ebnf = None
            if ebnf is not None:
                return {"grammar": ebnf}
        return {"json": c.schema}
    if c.type == "regex":
        return {"regex": c.pattern}
    return {"grammar": c.grammar}


def to_vllm_params(c: Constraint | None, backend: str | None = None) -> Any:
    """``vllm.sampling_params.StructuredOutputsParams`` for ``SamplingParams(structured_outputs=...)``.

    None for an unconstrained output. Imports vLLM.
    """
    fields = to_vllm_structured_outputs(c, backend)
    if fields is None:
        return None
    from vllm.sampling_params import StructuredOutputsParams

    return StructuredOutputsParams(**fields)


def choice_regex(choices: tuple[str, ...] | list[str]) -> str:
    """A regex matching exactly one of the choices (escaped; longest first, for readability only)."""
    return "(" + "|".join(re.escape(ch) for ch in sorted(choices, key=lambda s: (-len(s), s))) + ")"


def to_outlines_core_regex(c: Constraint) -> str:
    """The regex outlines-core builds its index from (it has no CFG: grammar raises ValueError)."""
    _check(c)
    if c.type == "choice":
        return choice_regex(c.choices or ())
    if c.type == "regex":
        return c.pattern or ""
    if c.type == "json_schema":
        from outlines_core.json_schema import build_regex_from_schema

        return build_regex_from_schema(c.schema_json, "")
    raise ValueError("outlines-core cannot express a context-free grammar")


def to_outlines(c: Constraint | None) -> Any:
    """An Outlines 1.x output type: ``Literal[...]`` (choice), ``outlines.types.JsonSchema``,
    ``outlines.types.Regex`` or ``outlines.types.CFG``; None for text. Imports outlines."""
    if c is None:
        return None
    _check(c)
    if c.type == "choice":
        from typing import Literal

        return Literal[tuple(c.choices or ())]  # type: ignore[valid-type]
    import outlines.types as ot

    if c.type == "json_schema":
        return ot.JsonSchema(c.schema_json, whitespace_pattern="")
    if c.type == "regex":
        return ot.Regex(c.pattern or "")
    return ot.CFG(c.grammar or "")


def _ebnf_string(s: str) -> str:
    """An xgrammar EBNF string literal (as vLLM's ``choice_as_grammar`` escapes it)."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for ch in s:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def choice_ebnf(choices: tuple[str, ...] | list[str]) -> str:
    """The EBNF grammar vLLM compiles for ``{"choice": [...]}`` with xgrammar."""
    return "root ::= " + " | ".join(_ebnf_string(ch) for ch in choices)


def to_xgrammar_grammar(c: Constraint, compiler: Any) -> Any:
    """Compile with an ``xgrammar.GrammarCompiler`` the way vLLM's xgrammar backend does with
    ``disable_any_whitespace``: choice as EBNF alternatives, JSON with ``any_whitespace=False``
    and ``separators=(",", ":")`` (length-bounded strings through `xgrammar_json.ebnf_for_json`, as
    `to_vllm_structured_outputs` sends them), regex, Lark via ``compile_lark``. Returns a
    CompiledGrammar."""
    _check(c)
    if c.type == "choice":
        return compiler.compile_grammar(choice_ebnf(c.choices or ()))
    if c.type == "json_schema":
        ebnf = ebnf_for_json(c.schema_json)
        if ebnf is not None:
            return compiler.compile_grammar(ebnf)
        return compiler.compile_json_schema(c.schema_json, any_whitespace=False, separators=(",", ":"))
    if c.type == "regex":
        return compiler.compile_regex(c.pattern)
    return compiler.compile_lark(c.grammar)


def to_llguidance_grammar(c: Constraint) -> str:
    """An llguidance grammar (its JSON form) for ``llguidance.LLMatcher``: choice as Lark
    alternatives, JSON with `LLGUIDANCE_JSON_OPTIONS` (compact), regex, or the Lark grammar."""
    _check(c)
    from llguidance import LLMatcher

    if c.type == "choice":
        alternatives = " | ".join(json.dumps(ch, ensure_ascii=False) for ch in c.choices or ())
        return LLMatcher.grammar_from_lark("start: " + alternatives)
    if c.type == "json_schema":
        return LLMatcher.grammar_from_json_schema(c.schema_json, overrides=LLGUIDANCE_JSON_OPTIONS)
    if c.type == "regex":
        return LLMatcher.grammar_from_regex(c.pattern or "")
    return LLMatcher.grammar_from_lark(c.grammar or "")
