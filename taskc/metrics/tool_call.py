"""Tool-call metrics: `tool_call_equivalence`, `binary_tool_call`, `staged_tool_call`.

The prediction is the runner's parsed value when there is one, else `raw` parsed with
`parse_tool_call` (so a call the runner rejected can still be read); nothing parsable scores 0.
The reference is a `{"name", "parameters"}` dict (a JSON string of one is accepted too).

Names must be equal; parameters are compared structurally (key order irrelevant, `1 == 1.0`,
`True != 1`, `"1" != 1`, nested values recursively). `tool_call_equivalence` and
`staged_tool_call` first drop, on both sides, every parameter equal to the `default` its tool
declares in `output["tools"]`, so an omitted parameter equals its default; `binary_tool_call`
does not.

`staged_tool_call` gives partial credit: 0.0 nothing parses, 0.25 wrong function, 0.5 right
function but different parameter names, 0.75 same names but different values, 1.0 equal.
"""

from __future__ import annotations

from typing import Any, Sequence

from taskc.metrics.base import INVALID_OUTPUT, Metric, MetricInput, MetricScore, mean_aggregate
from taskc.metrics.tool_call_parse import extract_tool_call, parse_tool_call
from taskc.metrics.values import struct_eq

_NO_DEFAULTS: dict[str, Any] = {}


def tool_defaults(tools: Sequence[dict] | None) -> dict[str, dict[str, Any]]:
    """`{tool name: {parameter: declared default}}` for the tools of an output declaration.

    Tools may be given unwrapped (`{"name", "parameters"}`) or in OpenAI form
    (`{"type": "function", "function": {...}}`).
    """
    out: dict[str, dict[str, Any]] = {}
    for tool in tools or ():
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            tool = tool["function"]
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        schema = tool.get("parameters")
        props = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(props, dict):
            props = {}
        out[tool["name"]] = {k: p["default"] for k, p in props.items()
                             if isinstance(p, dict) and "default" in p}
    return out


def drop_defaults(params: dict, defaults: dict[str, Any]) -> dict:
    """`params` without the parameters equal to their declared default (a new dict when one
    is dropped, else `params` itself; never mutated)."""
    if not defaults:
        return params
    for k in params:
        if k in defaults:
            break
    else:
        return params
    return {k: v for k, v in params.items()
            if not (k in defaults and struct_eq(v, defaults[k]))}


def _as_call(value: Any) -> dict | None:
    if type(value) is dict and type(value.get("name")) is str \
            and type(value.get("parameters")) is dict and len(value) == 2:
        return value  # already canonical; never mutated
    if isinstance(value, str):
        return parse_tool_call(value)
    call = extract_tool_call(value)
    if call is not None and isinstance(call.get("parameters"), dict):
        return call
    return None


class _ToolCallMetric(Metric):
    kinds = frozenset({"tool_call"})
    use_defaults = True

    def _configure(self, options: dict) -> None:
        self._tools_obj: Any = None
        self._defaults: dict[str, dict[str, Any]] = {}

    def _defaults_for(self, output: dict, name: str) -> dict[str, Any]:
        tools = output.get("tools") if output else None
        if tools is not self._tools_obj:
            self._defaults = tool_defaults(tools)
            self._tools_obj = tools
        return self._defaults.get(name, _NO_DEFAULTS)

    def _calls(self, inp: MetricInput) -> tuple[dict | None, dict | None]:
        pred = None
        if inp.parsed is not None:
            pred = _as_call(inp.parsed)
        if pred is None and inp.raw is not None:
            pred = parse_tool_call(inp.raw)
        return pred, _as_call(inp.reference)

    def _stage(self, inp: MetricInput) -> tuple[float, dict]:
        """(stage value, detail) with the staged_tool_call scale."""
        pred, ref = self._calls(inp)
        if ref is None:
            return 0.0, {"reason": "unparseable reference"}
        if pred is None:
            reason = INVALID_OUTPUT if inp.raw is None else "unparseable tool call"
            return 0.0, {"reason": reason}
        name = pred["name"]
        if name != ref["name"]:
            return 0.25, {"reason": "wrong function", "predicted": name,
                          "expected": ref["name"]}
        p, r = pred["parameters"], ref["parameters"]
        if self.use_defaults:
            defaults = self._defaults_for(inp.output, name)
            if defaults:
                p, r = drop_defaults(p, defaults), drop_defaults(r, defaults)
        if struct_eq(p, r):
            return 1.0, {}
        if p.keys() != r.keys():
            return 0.5, {"reason": "different parameter names",
                         "missing": sorted(r.keys() - p.keys()),
                         "extra": sorted(p.keys() - r.keys())}
        return 0.75, {"reason": "different parameter values",
                      "different": sorted(k for k in r if not struct_eq(p[k], r[k]))}


class ToolCallEquivalence(_ToolCallMetric):
    """1.0 when the called function and its parameters (defaults normalized) are equal."""

    name = "tool_call_equivalence"

    def score(self, inp: MetricInput) -> MetricScore:
        """Binary score with default normalization; the failure stage is in `detail`."""
        stage, detail = self._stage(inp)
        return MetricScore(1.0 if stage == 1.0 else 0.0, detail)


class BinaryToolCall(ToolCallEquivalence):
    """Like tool_call_equivalence but without default normalization."""

    name = "binary_tool_call"
    use_defaults = False


class StagedToolCall(_ToolCallMetric):
    """Partial credit: 0 / 0.25 / 0.5 / 0.75 / 1 (see module docstring)."""

    name = "staged_tool_call"

    def score(self, inp: MetricInput) -> MetricScore:
        """Staged score with default normalization."""
        stage, detail = self._stage(inp)
        return MetricScore(stage, detail)

    def aggregate(self, scores: Sequence[MetricScore]) -> dict:
        """Mean, n, and how many samples reached each stage (`stages`)."""
        out = mean_aggregate(scores)
        stages = {"0": 0, "0.25": 0, "0.5": 0, "0.75": 0, "1": 0}
        for s in scores:
            key = "1" if s.value == 1.0 else ("0" if s.value == 0.0 else repr(s.value))
            if key in stages:
                stages[key] += 1
        out["stages"] = stages
        return out
