"""Length-bounded JSON strings lowered for xgrammar (and for vLLM's xgrammar backend) by taskc.

What each engine accepts is checked in test_random_walks.py (escapes, bounds, control characters,
random walks); here: which schemas are rewritten, the grammar's shape, and that vLLM takes it.
"""

from __future__ import annotations

import pytest

from taskc.constraints import lower
from taskc.constraints.ir import Constraint
from taskc.constraints.xgrammar_json import ebnf_for, ebnf_for_json

pytest.importorskip("xgrammar")

MESSAGE = {"type": "string", "minLength": 1}


def _obj(**props: dict) -> dict:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


@pytest.mark.parametrize(("schema", "bounded"), [
    (_obj(m=MESSAGE), True),
    (_obj(m={"type": "string", "maxLength": 4}), True),
    (_obj(m={"type": "array", "items": MESSAGE}), True),
    ({"anyOf": [_obj(a={"type": "integer"}), _obj(m=MESSAGE)]}, True),
    ({"$defs": {"msg": MESSAGE}, **_obj(m={"$ref": "#/$defs/msg"})}, True),
    (_obj(m={"type": "string"}), False),
    (_obj(m={"type": "string", "minLength": 1, "pattern": "^[a-z]+$"}), False),  # xgrammar's regex
    (_obj(m={"type": "string", "minLength": 1, "enum": ["a", "b"]}), False),
    (_obj(m={"const": {"type": "string", "minLength": 1}}), False),  # data, not a subschema
    (_obj(minLength={"type": "integer"}), False),  # a property named minLength
])
def test_which_schemas_are_rewritten(schema, bounded) -> None:
    assert (ebnf_for(schema) is not None) is bounded
    assert ebnf_for_json(Constraint.json(schema).schema_json) == ebnf_for(schema)


def test_the_grammar_keeps_escapes_and_the_fast_string_tail() -> None:
    text = ebnf_for(_obj(m=MESSAGE, short={"type": "string", "minLength": 2, "maxLength": 3}))
    assert "Regex(" not in text and "taskc-length-bounded-string" not in text
    rules = dict(line.split(" ::= ", 1) for line in text.splitlines())
    assert rules["root_prop_0_1"] == (
        '(("\\"" ([^\\0-\\x1f\\"\\\\] | ("\\\\" taskc_json_escape)) taskc_json_string_tail)) (=([ \\n\\r\\t]* [,}\\]:]))'
    )
    assert rules["root_prop_1_1"] == '(("\\"" ([^\\0-\\x1f\\"\\\\] | ("\\\\" taskc_json_escape)){2, 3} "\\""))'
    assert ebnf_for(_obj(m=MESSAGE)) == ebnf_for(_obj(m=MESSAGE))  # deterministic


def test_min_length_above_max_length_is_an_error() -> None:
    with pytest.raises(ValueError, match="minLength 3 > maxLength 2 admits nothing"):
        ebnf_for(_obj(m={"type": "string", "minLength": 3, "maxLength": 2}))


def test_vllm_gets_the_grammar_for_xgrammar_and_the_schema_otherwise() -> None:
    schema = _obj(m=MESSAGE)
    c = Constraint.json(schema)
    assert lower.to_vllm_structured_outputs(c) == {"grammar": ebnf_for(schema)}
    assert lower.to_vllm_structured_outputs(c, "auto") == {"grammar": ebnf_for(schema)}
    assert lower.to_vllm_structured_outputs(c, "guidance") == {"json": schema}
    plain = _obj(m={"type": "string"})
    assert lower.to_vllm_structured_outputs(Constraint.json(plain)) == {"json": plain}


def test_vllm_validates_the_grammar_it_is_sent() -> None:
    """vLLM's own request check for its xgrammar backend (the code a server runs on each request)."""
    pytest.importorskip("vllm")
    from vllm.sampling_params import SamplingParams
    from vllm.v1.structured_output.backend_xgrammar import validate_xgrammar_grammar

    params = SamplingParams(structured_outputs=lower.to_vllm_params(Constraint.json(_obj(m=MESSAGE))))
    assert params.structured_outputs.grammar is not None and params.structured_outputs.json is None
    validate_xgrammar_grammar(params)  # raises on a grammar it cannot read
