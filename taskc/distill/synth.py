"""`taskc synth`: teacher-generated training data, kept only when it meets the contract.

The teacher (any backend) gets the task description, the output contract and K seed examples and
proposes one new example per request, as `{"inputs": {...}, "output": ...}` (constrained to that
JSON shape where the backend takes constraints). A candidate is kept only if it parses, its output
passes the same grammar as `taskc verify`, and it is not a near-duplicate of a kept row, a seed
row, or any test row (no leakage). Near-duplicates: the same normalized text, or a Jaccard
similarity of character 4-gram shingles at or above `SIMILARITY`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskc.compiler.contract import Contract
from taskc.common.encoding import canonical_json, messages_hash
from taskc.compiler.schemas import to_strict
from taskc.constraints.ir import Constraint
from taskc.runner.types import Request

SIMILARITY = 0.8


def normalize(text: str) -> str:
    """Lower-case, punctuation dropped, whitespace collapsed: the form duplicates are found in."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def shingles(text: str, k: int = 4) -> frozenset[str]:
    """Character k-grams of the normalized text."""
    norm = normalize(text)
    return frozenset(norm[i:i + k] for i in range(max(1, len(norm) - k + 1)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 0.0


@dataclass(frozen=True)
class SynthReport:
    """What happened to every candidate."""

    requested: int
    candidates: int
    kept: int
    rejected: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """As written to the report file."""
        return {"requested": self.requested, "candidates": self.candidates, "kept": self.kept, "rejected": self.rejected}


def _input_schema(declared: dict[str, Any]) -> dict[str, Any]:
    if declared.get("type") == "messages":
        return {"type": "array", "items": {"type": "object", "properties": {
            "role": {"type": "string", "enum": ["user", "assistant"]}, "content": {"type": "string"}},
            "required": ["role", "content"], "additionalProperties": False}}
    from taskc.spec.type_syntax import parse_type

    return parse_type(declared.get("type", "string"))


def candidate_schema(contract: Contract) -> dict[str, Any]:
    """The JSON shape a teacher answers in: the inputs, then the output under the contract."""
    inputs = contract.body["inputs"]
    output = contract.body["validate_schema"] or {"type": "string"}
    return {"type": "object", "properties": {
        "inputs": {"type": "object", "properties": {k: _input_schema(v) for k, v in inputs.items()},
                   "required": list(inputs), "additionalProperties": False},
        "output": output}, "required": ["inputs", "output"], "additionalProperties": False}


def teacher_messages(contract: Contract, seeds: list[int]) -> list[dict[str, str]]:
    """The teacher's prompt: task, inputs, the output contract, seed examples."""
    body = contract.body
    inputs = "\n".join(f"- {k} ({v.get('type', 'string')}): {v.get('description', '')}".rstrip(": ")
                       for k, v in body["inputs"].items())
    examples = "\n".join(
        json.dumps({"inputs": contract.inputs_of("train", i), "output": json.loads(contract.gold_text("train", i))
                    if contract.output.kind in ("tool_call", "object") else contract.gold_text("train", i)},
                   ensure_ascii=False)
        for i in seeds)
    system = ("You write new training examples for a task. Answer with one JSON object "
              '{"inputs": {...}, "output": ...} and nothing else.')
    user = (f"Task: {body['description'] or body['name']}\n\nInputs:\n{inputs}\n\n"
            f"The output must follow these rules:\n{body['prompt']['format_instructions'] or 'free text'}\n\n"
            f"Examples:\n{examples}\n\nWrite one new example, different from all of these.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class _Filter:
    """Keeps candidates in order; remembers why each rejected one was rejected."""

    def __init__(self, contract: Contract, seeds: list[int]):
        self.contract = contract
        self.kept: list[dict[str, Any]] = []
        self.rejected: Counter[str] = Counter()
        self.test = [self._shingle_row(contract.inputs_of("test", i)) for i in range(len(contract.splits["test"].rows))]
        self.seeds = [self._shingle_row(contract.inputs_of("train", i)) for i in seeds]
        self.kept_shingles: list[tuple[str, frozenset[str]]] = []
        self._compiled: dict[str, Any] = {}

    @staticmethod
    def _text(inputs: dict[str, Any]) -> str:
        return " ".join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in inputs.values())

    def _shingle_row(self, inputs: dict[str, Any]) -> tuple[str, frozenset[str]]:
        text = self._text(inputs)
        return normalize(text), shingles(text)

    def _accepts(self, constraint: Constraint | None, text: str) -> bool:
        if constraint is None:
            return True
        from taskc.constraints.engines import get_engine

        key = canonical_json(constraint.to_dict())
        if key not in self._compiled:
            self._compiled[key] = get_engine("xgrammar").compile(constraint)
        return self._compiled[key].accepts(text)[0]

    def offer(self, raw: str | None) -> None:
        """Judge one candidate; keep it or count the reason."""
        reason = self._reason(raw)
        if reason:
            self.rejected[reason] += 1

    def _reason(self, raw: str | None) -> str | None:
        try:
            cand = json.loads(raw or "")
        except ValueError:
            return "unparseable"
        if not isinstance(cand, dict) or not isinstance(cand.get("inputs"), dict) or "output" not in cand:
            return "unparseable"
        names = list(self.contract.body["inputs"])
        inputs = {k: cand["inputs"].get(k) for k in names}
        if any(v in (None, "") for v in inputs.values()):
            return "missing input"
        output = self.contract.output
        value, problem = output.parse_gold(cand["output"])
        if problem:
            return "violates constraint"
        text = output.serialize(value)
        constraint = self._constraint(inputs)
        if constraint is False:
            return "unknown database"
        if not self._accepts(constraint, text):
            return "violates constraint"
        norm, grams = self._shingle_row(inputs)
        for pool, reason in ((self.test, "near-duplicate of a test row"), (self.seeds, "near-duplicate of a seed row"),
                             (self.kept_shingles, "near-duplicate of a kept row")):
            if any(norm == n or jaccard(grams, g) >= SIMILARITY for n, g in pool):
                return reason
        self.kept_shingles.append((norm, grams))
        self.kept.append({**inputs, "answer": value})
        return None

    def _constraint(self, inputs: dict[str, Any]) -> Constraint | None | bool:
        if self.contract.output.kind != "sql":
            return self.contract.constraints.get(None)
        from taskc.compiler.prompts import render

        key = render(self.contract.output.database or "", inputs).strip()
        return self.contract.constraints.get(key, False)


def seed_rows(contract: Contract, k: int) -> list[int]:
    """K train rows, chosen deterministically (by hash of the row number)."""
    n = len(contract.splits["train"].rows)
    return sorted(range(n), key=lambda i: hashlib.sha256(f"synth:{i}".encode()).hexdigest())[: min(k, n)]


async def synthesize(contract: Contract, backend, n: int, seed_examples: int, *, max_rounds: int = 4,
                     concurrency: int = 16, temperature: float = 1.0, cache=None) -> tuple[list[dict[str, Any]], SynthReport]:
    """Ask the teacher for candidates in rounds until `n` are kept (or `max_rounds` pass)."""
    from taskc.runner.engine import run_requests

    if "train" not in contract.splits:
        from taskc.errors import TaskcError

        raise TaskcError(f"synth draws its seed examples from the train split, and {contract.name} has none")
    seeds = seed_rows(contract, seed_examples)
    messages = tuple(teacher_messages(contract, seeds))
    digest = messages_hash(messages)
    constraint = Constraint.json(candidate_schema(contract))
    generation = {**contract.body["generation"], "temperature": temperature,
                  "max_tokens": max(512, contract.body["generation"].get("max_tokens", 256) * 2)}
    strict = to_strict(candidate_schema(contract))
    keep = _Filter(contract, seeds)
    sent = 0
    for _ in range(max_rounds):
        want = n - len(keep.kept)
        if want <= 0:
            break
        batch = [Request(index=0, repeat=sent + j, messages=messages, constraint=constraint, output_kind="object",
                         generation=generation, messages_hash=digest, strict_schema=strict, name="example")
                 for j in range(want)]
        sent += want
        results = await run_requests(backend, batch, concurrency=concurrency, cache=cache,
                                     cache_namespace=contract.id + ":synth", progress=False)
        for result in results:
            if result.error:
                keep.rejected["request failed"] += 1
            else:
                keep.offer(result.raw)
    kept = keep.kept[:n]
    return kept, SynthReport(requested=sent, candidates=sent, kept=len(kept), rejected=dict(sorted(keep.rejected.items())))


def write_outputs(rows: list[dict[str, Any]], report: SynthReport, out: Path) -> Path:
    """The train file (JSONL, one `{inputs..., answer}` per line) and `<out>.report.json`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report_path = out.with_suffix(".report.json")
    report_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return report_path


def run_synth(contract: Contract, backend, n: int, seed_examples: int, out: Path, cache=None) -> SynthReport:
    """Synthesize and write; returns the report."""
    rows, report = asyncio.run(synthesize(contract, backend, n, seed_examples, cache=cache))
    write_outputs(rows, report, out)
    return report
