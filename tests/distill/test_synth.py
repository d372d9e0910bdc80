"""`taskc synth`: candidates from a teacher over real HTTP, filtered by the contract."""

import asyncio
import itertools
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from taskc.compiler.build import compile_spec  # noqa: E402
from taskc.constraints.ir import Constraint  # noqa: E402
from taskc.constraints.lower import to_vllm_structured_outputs  # noqa: E402
from taskc.distill.synth import candidate_schema, jaccard, normalize, shingles, synthesize, write_outputs  # noqa: E402
from tests.fakes.provider_server import FakeProvider  # noqa: E402

CANDIDATES = [
    {"inputs": {"question": "show me the last 7 commits in one line each"},
     "output": {"name": "git_log", "parameters": {"limit": 7, "oneline": True}}},            # kept
    {"inputs": {"question": "Show me the LAST 7 commits, in one line each!!"},
     "output": {"name": "git_log", "parameters": {"limit": 7, "oneline": True}}},            # duplicate of kept
    {"inputs": {"question": "check out HEAD~3 in detached mode"},
     "output": {"name": "git_switch", "parameters": {"branch": "HEAD~3", "detach": True}}},  # a test row: leakage
    "this is not JSON",                                                                      # unparseable
    {"inputs": {"question": "log seven commits"}, "output": {"name": "git_log", "parameters": {"limit": "seven"}}},
    {"inputs": {}, "output": {"name": "git_status", "parameters": {}}},                       # missing input
    {"inputs": {"question": "stage every markdown file under docs"},
     "output": {"name": "git_add", "parameters": {"files": ["docs/*.md"]}}},                 # kept
]


def test_near_duplicate_helpers():
    assert normalize("Show me, the LOG!") == "show me the log"
    assert jaccard(shingles("stage all files"), shingles("Stage all files.")) == 1.0
    assert jaccard(shingles("stage all files"), shingles("delete the branch")) < 0.2


def test_candidate_schema_wraps_inputs_and_the_output_contract():
    contract = compile_spec(ROOT / "specs" / "git_assistant.yaml")
    schema = candidate_schema(contract)
    assert schema["required"] == ["inputs", "output"]
    assert schema["properties"]["inputs"]["properties"] == {"question": {"type": "string"}}
    assert schema["properties"]["output"] == contract.body["validate_schema"]


def test_synth_keeps_only_valid_new_rows_and_counts_rejections(tmp_path):
    contract = compile_spec(ROOT / "specs" / "git_assistant.yaml")
    answers = itertools.cycle(CANDIDATES)

    def responder(api, body):
        item = next(answers)
        return item if isinstance(item, str) else json.dumps(item)

    from taskc.backends import get_backend

    with FakeProvider(responder=responder) as fake:
        backend = get_backend("openai", model="teacher", base_url=fake.openai_base_url, api_key_env=None)
        rows, report = asyncio.run(synthesize(contract, backend, n=2, seed_examples=5, max_rounds=10, concurrency=1))
        bodies = [r.body for r in fake.requests]
    assert report.kept == 2 and report.requested == 7
    assert report.rejected == {
        "missing input": 1,
        "near-duplicate of a kept row": 1,
        "near-duplicate of a test row": 1,
        "unparseable": 1,
        "violates constraint": 1,
    }
    assert rows == [
        {"question": "show me the last 7 commits in one line each", "answer": {"name": "git_log", "parameters": {"limit": 7, "oneline": True}}},
        {"question": "stage every markdown file under docs", "answer": {"name": "git_add", "parameters": {"files": ["docs/*.md"]}}},
    ]
    # the teacher saw the task, the contract and the seed examples, and was constrained
    prompt = bodies[0]["messages"][1]["content"]
    assert "Turn a natural-language git request into exactly one git tool call." in prompt
    assert contract.body["prompt"]["format_instructions"] in prompt
    assert prompt.count('{"inputs": ') == 5
    # as vLLM's xgrammar backend takes it (the git message's minLength: EBNF that keeps escapes)
    assert bodies[0]["structured_outputs"] == to_vllm_structured_outputs(Constraint.json(candidate_schema(contract)))
    report_path = write_outputs(rows, report, tmp_path / "synth.jsonl")
    assert json.loads(report_path.read_text())["kept"] == 2
    assert [json.loads(l)["question"] for l in (tmp_path / "synth.jsonl").read_text().splitlines()] == [
        "show me the last 7 commits in one line each", "stage every markdown file under docs"]


def test_run_synth_writes_the_train_file_and_resends_nothing_cached(tmp_path):
    """The `taskc synth` body: rows and report on disk; a second run answers from the cache."""
    from taskc.backends import get_backend
    from taskc.distill.synth import run_synth
    from taskc.runner.cache import ResultCache

    contract = compile_spec(ROOT / "specs" / "git_assistant.yaml")
    kept = [CANDIDATES[0], CANDIDATES[6]]
    answers = itertools.cycle(kept)
    out = tmp_path / "synth" / "git.jsonl"
    with FakeProvider(responder=lambda api, body: json.dumps(next(answers))) as fake:
        backend = get_backend("openai", model="teacher", base_url=fake.openai_base_url, api_key_env=None)
        with ResultCache(tmp_path / "cache.sqlite") as cache:
            report = run_synth(contract, backend, 2, 5, out, cache=cache)
        first = len(fake.requests)
        with ResultCache(tmp_path / "cache.sqlite") as cache:
            again = run_synth(contract, backend, 2, 5, out, cache=cache)
        assert len(fake.requests) == first == 2
    assert report == again and report.kept == 2 and report.rejected == {}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"question": c["inputs"]["question"], "answer": c["output"]} for c in kept]
    assert json.loads(out.with_suffix(".report.json").read_text())["kept"] == 2
