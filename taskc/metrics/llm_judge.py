"""`llm_judge`: a judge model grades each prediction against the reference and a rubric.

The metric never calls a model. The runner renders `judge_messages(...)` (from the fixed
templates `JUDGE_SYSTEM` and `JUDGE_USER`, which the compiler stores in the contract as
`judge_prompt`), sends them to the judge named by the `judge` option with `JUDGE_SCHEMA` as
the response format, and puts the reply in `MetricInput.judge_raw`. `score` reads the
verdict from it with `parse_verdict`.

Template variables: `rubric` (str), `inputs` (dict of the example's input values),
`reference` and `prediction`. `judge_messages` passes strings as they are and any other value
as canonical JSON text, so the templates only ever print strings.

Options: `judge` = `{backend, model, base_url?, api_key_env?, price?}` (required; the runner
reads it), `rubric` (required, str).
"""

from __future__ import annotations

import json
import re
from typing import Any

from taskc.metrics.base import Metric, MetricInput, MetricScore, invalid_score, option_message
from taskc.metrics.values import comparable_json

JUDGE_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["correct", "incorrect"]},
        "reason": {"type": "string"},
    },
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}

JUDGE_SYSTEM = (
    "You are a strict, impartial grader. You compare a model's answer with a reference "
    "answer and decide whether the model's answer is correct according to the rubric.\n"
    "Reply with a JSON object only: {\"verdict\": \"correct\" or \"incorrect\", "
    "\"reason\": \"<one sentence>\"}."
)

JUDGE_USER = (
    "## Rubric\n{{ rubric }}\n\n"
    "## Task input\n"
    "{% for key, value in inputs.items() %}### {{ key }}\n{{ value }}\n\n{% endfor %}"
    "## Reference answer\n{{ reference }}\n\n"
    "## Model answer\n{{ prediction }}\n\n"
    "Is the model answer correct according to the rubric? Answer with the JSON object."
)

JUDGE_KEYS = ("backend", "model", "base_url", "api_key_env", "price")

_VERDICT = re.compile(r'"?verdict"?\s*[:=]\s*"?(correct|incorrect)\b', re.I)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.S)
_templates: dict[str, Any] = {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else comparable_json(value)


def _template(source: str) -> Any:
    tpl = _templates.get(source)
    if tpl is None:
        import jinja2  # imported lazily: keeps `import taskc.metrics` light
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                            keep_trailing_newline=True)
        tpl = _templates[source] = env.from_string(source)
    return tpl


def judge_messages(rubric: str, inputs: dict, reference: Any, prediction: Any) -> list[dict]:
    """The judge's chat messages (system, user) rendered from JUDGE_SYSTEM and JUDGE_USER."""
    values = {
        "rubric": rubric,
        "inputs": {str(k): _text(v) for k, v in (inputs or {}).items()},
        "reference": _text(reference),
        "prediction": _text(prediction),
    }
    return [
        {"role": "system", "content": _template(JUDGE_SYSTEM).render(**values)},
        {"role": "user", "content": _template(JUDGE_USER).render(**values)},
    ]


def parse_verdict(raw: str | None) -> tuple[float | None, str]:
    """(1.0 for "correct", 0.0 for "incorrect", None when unreadable; the judge's reason).

    Reads a JSON object (optionally fenced or surrounded by text); falls back to a
    `verdict: correct|incorrect` pattern."""
    if raw is None:
        return None, "no judge verdict"
    text = raw.strip()
    m = _FENCE.search(text)
    candidates = [m.group(1).strip()] if m else []
    candidates.append(text)
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for cand in candidates:
        try:
            obj = json.loads(cand)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("verdict"), str):
            verdict = obj["verdict"].strip().lower()
            reason = obj.get("reason")
            reason = reason if isinstance(reason, str) else ""
            if verdict in ("correct", "incorrect"):
                return (1.0 if verdict == "correct" else 0.0), reason
    m = _VERDICT.search(text)
    if m:
        return (1.0 if m.group(1).lower() == "correct" else 0.0), ""
    return None, "unparseable judge verdict"


class LLMJudge(Metric):
    """1.0 when the judge's verdict (in `MetricInput.judge_raw`) is "correct"."""

    name = "llm_judge"
    OPTIONS = ("judge", "rubric")
    REQUIRED = ("judge", "rubric")

    @classmethod
    def _check_values(cls, options: dict) -> list[tuple[str, str]]:
        errors = []
        if "judge" in options:
            judge = options["judge"]
            if not isinstance(judge, dict):
                errors.append(("judge", option_message(
                    cls.name, "judge", "must be a mapping with backend, model and optional "
                                       "base_url, api_key_env, price")))
            else:
                for key in ("backend", "model"):
                    if not isinstance(judge.get(key), str) or not judge.get(key):
                        errors.append(("judge", option_message(
                            cls.name, "judge", f"needs '{key}' (a non-empty string)")))
                for key in sorted(set(judge) - set(JUDGE_KEYS)):
                    errors.append(("judge", option_message(
                        cls.name, "judge", f"has unknown key '{key}' (expected one of: "
                                           f"{', '.join(JUDGE_KEYS)})")))
                for key in ("base_url", "api_key_env"):
                    if key in judge and not isinstance(judge[key], str):
                        errors.append(("judge", option_message(
                            cls.name, "judge", f"needs '{key}' to be a string")))
        if "rubric" in options and (not isinstance(options["rubric"], str)
                                    or not options["rubric"].strip()):
            errors.append(("rubric", option_message(cls.name, "rubric",
                                                    "must be a non-empty string")))
        return errors

    def _configure(self, options: dict) -> None:
        self.judge = dict(options["judge"])
        self.rubric = options["rubric"]

    def messages(self, inp: MetricInput) -> list[dict]:
        """The judge messages for one sample (what the runner sends to the judge)."""
        return judge_messages(self.rubric, inp.inputs or {}, inp.reference, inp.parsed)

    def score(self, inp: MetricInput) -> MetricScore:
        """The judge's verdict as 1.0/0.0, with its reason in `detail`."""
        if inp.parsed is None:
            return invalid_score()
        if inp.judge_raw is None:
            return MetricScore(0.0, {"reason": "no judge verdict"})
        value, reason = parse_verdict(inp.judge_raw)
        if value is None:
            return MetricScore(0.0, {"reason": reason})
        if value == 1.0:
            return MetricScore(1.0, {"verdict": "correct", "judge_reason": reason})
        return MetricScore(0.0, {"verdict": "incorrect", "judge_reason": reason,
                                 "reason": "judged incorrect"})
