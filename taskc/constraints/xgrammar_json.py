"""JSON Schema lowered for xgrammar with length-bounded strings that keep their JSON escapes.

xgrammar 0.2.8 (the version vLLM 0.32 runs) lowers a string's ``minLength`` / ``maxLength`` to a
repetition of the raw class ``[^"\\\\\\r\\n]``: no escapes, so a gold ``"line 1\\nline 2"`` or
``"say \\"hi\\""`` is refused and a model can never write one, and raw control characters are let
through, so a model can write invalid JSON. The repetition also makes its masks slow (about 1 ms
at p99 inside the 13 git tools' ``message``, bench/RESULTS.md). llguidance and outlines-core get
both right.

`ebnf_for(schema)` works around it with xgrammar's own converter: each such string is swapped
for a marker ``pattern``, xgrammar converts the schema to EBNF, and each marker's rule is rewritten
as a JSON string of that length: characters are any non-control character but ``"`` and ``\\``,
or an escape. Only ``minLength``: that many characters, then the same right-recursive tail (with
its lookahead) xgrammar writes for plain strings, so masks stay as fast as a plain string's. With
``maxLength``: a bounded repetition of the same characters (correct; as slow as bounds make it).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

_MARKER = "taskc-length-bounded-string-"
#: Keys whose values are data, not subschemas (a ``const`` may hold a dict with a "minLength").
_DATA_KEYS = frozenset({"const", "enum", "default", "examples", "description", "title"})
_CHAR = r'([^\0-\x1f\"\\] | ("\\" taskc_json_escape))'
_EXTRA_RULES = (
    r'taskc_json_escape ::= (([\"\\/bfnrt]) | ("u" [A-Fa-f0-9] [A-Fa-f0-9] [A-Fa-f0-9] [A-Fa-f0-9]))' "\n"
    r'taskc_json_string_tail ::= (("\"") | ([^\0-\x1f\"\\] taskc_json_string_tail)'
    r' | ("\\" taskc_json_escape taskc_json_string_tail)) (=([ \n\r\t]* [,}\]:]))' "\n"
)
_AFTER_STRING = r"(=([ \n\r\t]* [,}\]:]))"


def _is_bounded_string(node: dict[str, Any]) -> bool:
    return (
        node.get("type") == "string"
        and ("minLength" in node or "maxLength" in node)
        and not ({"pattern", "format", "enum", "const"} & node.keys())
    )


def _mark(node: Any, bounds: list[tuple[int, int | None]]) -> Any:
    """A copy of the schema with every length-bounded string replaced by a marker pattern."""
    if isinstance(node, list):
        return [_mark(v, bounds) for v in node]
    if not isinstance(node, dict):
        return node
    if _is_bounded_string(node):
        low, high = int(node.get("minLength", 0)), node.get("maxLength")
        bounds.append((low, None if high is None else int(high)))
        return {"type": "string", "pattern": f"^{_MARKER}{len(bounds) - 1}$"}
    return {k: (v if k in _DATA_KEYS else _mark(v, bounds)) for k, v in node.items()}


def _string_rule(low: int, high: int | None) -> str:
    if high is None:
        return '(("\\"" ' + " ".join([_CHAR] * low + ["taskc_json_string_tail"]) + ")) " + _AFTER_STRING
    if high < low:
        raise ValueError(f"a string with minLength {low} > maxLength {high} admits nothing")
    return '(("\\"" ' + (f"{_CHAR}{{{low}, {high}}} " if high else "") + '"\\""))'


def ebnf_for(schema: dict[str, Any]) -> str | None:
    """xgrammar EBNF (root rule ``root``) for `schema`, compact JSON (separators ``,`` and ``:``)
    as vLLM's ``disable_any_whitespace`` gives; None when the schema has no length-bounded string
    (compile the schema itself then). Imports xgrammar.

    Raises RuntimeError if xgrammar's output does not have the shape this rewrite expects (a
    different xgrammar version), rather than hand back a grammar that silently lost a bound.
    """
    bounds: list[tuple[int, int | None]] = []
    marked = _mark(schema, bounds)
    if not bounds:
        return None
    import xgrammar as xgr

    text = str(xgr.Grammar.from_json_schema(json.dumps(marked), any_whitespace=False, separators=(",", ":")))
    for index, (low, high) in enumerate(bounds):
        rule = re.search(rf'^(\S+) ::= Regex\("\^{re.escape(_MARKER)}{index}\$", json_string=true\)$', text, re.M)
        quoted = rule and f'"\\"" {rule.group(1)} "\\""'
        if not rule or quoted not in text:
            raise RuntimeError(f"xgrammar wrote an unexpected grammar for a length-bounded string (marker {index})")
        name = rule.group(1)
        text = text.replace(quoted, name)
        text = text.replace(rule.group(0), f"{name} ::= {_string_rule(low, high)}")
    return text.rstrip("\n") + "\n" + _EXTRA_RULES


@lru_cache(maxsize=256)
def ebnf_for_json(schema_json: str) -> str | None:
    """`ebnf_for` of a schema given as JSON text (`Constraint.schema_json`), cached: the
    conversion costs about 2 ms for the 13 git tools and every request of a task carries the
    same schema."""
    return ebnf_for(json.loads(schema_json))
