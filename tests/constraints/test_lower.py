"""Lowering to vLLM / Outlines / xgrammar / llguidance: the right shapes, never a `guided_*` key."""

from __future__ import annotations

import json
import typing

import pytest

from taskc.constraints import lower
from taskc.constraints.ir import Constraint

SCHEMA = {"type": "object", "properties": {"a": {"type": "string", "enum": ["x", "y"]}}, "required": ["a"]}
CONSTRAINTS = [
    Constraint("choice", choices=("card_arrival", "pin \"blocked\"", "naïve\nlabel")),
    Constraint.json(SCHEMA),
    Constraint("regex", pattern="[0-9]{3}-[0-9]{4}"),
    Constraint("grammar", grammar='start: "SELECT " /[a-z]+/'),
]


def test_vllm_request_fields() -> None:
    choice, js, regex, grammar = (lower.to_vllm_structured_outputs(c) for c in CONSTRAINTS)
    assert choice == {"choice": ["card_arrival", 'pin "blocked"', "naïve\nlabel"]}
    assert js == {"json": SCHEMA}
    assert regex == {"regex": "[0-9]{3}-[0-9]{4}"}
    assert grammar == {"grammar": 'start: "SELECT " /[a-z]+/'}
    assert lower.to_vllm_structured_outputs(None) is None


def test_vllm_engine_and_server_config() -> None:
    assert lower.VLLM_ENGINE_CONFIG == {"backend": "xgrammar", "disable_any_whitespace": True}
    assert lower.VLLM_SERVER_FLAGS == """--structured-outputs-config '{"backend":"xgrammar","disable_any_whitespace":true}'"""
    flag, value = lower.vllm_server_args()
    assert flag == "--structured-outputs-config" and json.loads(value) == lower.VLLM_ENGINE_CONFIG


def test_engine_settings_per_output_kind() -> None:
    """The contract's engine block names the backend chosen for its output kind; the server flags
    carry the same config; kinds with the same constraint type share a backend, so the lowering
    of a constraint alone (what the OpenAI-compatible backend does) matches the contract."""
    for kind, backend in lower.ENGINE_BACKENDS.items():
        engine = lower.engine_settings(kind)
        assert engine == {"structured_outputs_config": {"backend": backend, "disable_any_whitespace": True}}
        flag, value = lower.vllm_server_args(engine)
        assert flag == "--structured-outputs-config" and json.loads(value) == engine["structured_outputs_config"]
        assert lower.vllm_server_flags(engine) == f"--structured-outputs-config '{value}'"
    assert set(lower.ENGINE_BACKENDS) == {"label", "tool_call", "object", "sql"}
    assert set(lower.ENGINE_BACKENDS.values()) <= {"xgrammar", "guidance"}
    assert lower.ENGINE_BACKENDS["tool_call"] == lower.ENGINE_BACKENDS["object"]
    kinds = {"choice": "label", "json_schema": "object", "regex": "label", "grammar": "sql"}
    for c in CONSTRAINTS:
        assert lower.backend_for(c) == lower.ENGINE_BACKENDS[kinds[c.type]]
    with pytest.raises(ValueError, match="no structured-output backend for output kind 'text'"):
        lower.engine_settings("text")
    assert lower.vllm_server_flags({}) == lower.VLLM_SERVER_FLAGS  # no constraint: the default config


def test_json_lowering_follows_the_backend() -> None:
    """A length-bounded string: xgrammar is sent taskc's EBNF, guidance the schema itself."""
    bounded = Constraint.json({"type": "object", "properties": {"m": {"type": "string", "minLength": 1}},
                               "required": ["m"], "additionalProperties": False})
    assert set(lower.to_vllm_structured_outputs(bounded, "xgrammar")) == {"grammar"}
    assert lower.to_vllm_structured_outputs(bounded, "guidance") == {"json": bounded.schema}
    assert lower.to_vllm_structured_outputs(bounded) == lower.to_vllm_structured_outputs(bounded, lower.backend_for(bounded))


def test_no_lowering_output_mentions_guided() -> None:
    """vLLM >= 0.12 ignores guided_* fields and runs the request unconstrained."""
    outputs = [lower.VLLM_SERVER_FLAGS, *lower.vllm_server_args()]
    outputs += [json.dumps(lower.VLLM_ENGINE_CONFIG), json.dumps(lower.VLLM_GUIDANCE_CONFIG)]
    for c in CONSTRAINTS:
        outputs.append(json.dumps(lower.to_vllm_structured_outputs(c)))
        outputs.append(repr(lower.to_outlines(c)))
        if c.type != "grammar":
            outputs.append(lower.to_outlines_core_regex(c))
    try:
        import vllm.sampling_params  # noqa: F401
    except ImportError:
        pass
    else:
        for c in CONSTRAINTS:
            params = lower.to_vllm_params(c)
            outputs.append(repr(params))
            outputs.extend(k for k, v in vars(params).items() if v not in (None, False))
    for text in outputs:
        assert "guided_" not in text, text


def test_vllm_params_object() -> None:
    sp = pytest.importorskip("vllm.sampling_params")
    params = lower.to_vllm_params(CONSTRAINTS[1])
    assert isinstance(params, sp.StructuredOutputsParams) and params.json == SCHEMA
    assert lower.to_vllm_params(CONSTRAINTS[3]).grammar == CONSTRAINTS[3].grammar
    assert lower.to_vllm_params(None) is None
    sampling = sp.SamplingParams(structured_outputs=lower.to_vllm_params(CONSTRAINTS[0]))
    assert sampling.structured_outputs.choice == list(CONSTRAINTS[0].choices)


def test_outlines_types() -> None:
    ot = pytest.importorskip("outlines.types")
    choice, js, regex, grammar = (lower.to_outlines(c) for c in CONSTRAINTS)
    assert typing.get_origin(choice) is typing.Literal and typing.get_args(choice) == CONSTRAINTS[0].choices
    assert isinstance(js, ot.JsonSchema) and json.loads(js.schema) == SCHEMA
    assert isinstance(regex, ot.Regex) and regex.pattern == CONSTRAINTS[2].pattern
    assert isinstance(grammar, ot.CFG) and grammar.definition == CONSTRAINTS[3].grammar
    assert lower.to_outlines(None) is None


def test_engine_lowerings_compile(compiled) -> None:
    """Each engine lowering compiles and keeps JSON compact (no free whitespace)."""
    for engine in ("xgrammar", "llguidance"):
        choice, js, regex, grammar = (compiled(engine, c) for c in CONSTRAINTS)
        assert choice.accepts('pin "blocked"') == (True, None)
        assert choice.accepts("naïve\nlabel") == (True, None)
        assert js.accepts('{"a":"x"}') == (True, None)
        assert not js.accepts('{"a": "x"}')[0] and not js.accepts('{ "a":"x"}')[0]
        assert regex.accepts("555-0199") == (True, None) and not regex.accepts("555-01999")[0]
        assert grammar.accepts("SELECT abc") == (True, None)
    pytest.importorskip("outlines_core")
    assert compiled("outlines-core", CONSTRAINTS[1]).accepts('{"a":"y"}') == (True, None)
    assert not compiled("outlines-core", CONSTRAINTS[1]).accepts('{"a": "y"}')[0]


def test_llguidance_json_options_are_compact() -> None:
    pytest.importorskip("llguidance")
    grammar = json.loads(lower.to_llguidance_grammar(CONSTRAINTS[1]))
    options = grammar["grammars"][0]["json_schema"]["x-guidance"]
    assert options == {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}


def test_invalid_constraints_are_refused() -> None:
    with pytest.raises(ValueError):
        lower.to_vllm_structured_outputs(Constraint("choice", choices=()))
    with pytest.raises(ValueError):
        lower.to_vllm_structured_outputs(Constraint("regex"))
    with pytest.raises(ValueError):
        lower.to_outlines_core_regex(CONSTRAINTS[3])
