"""`taskc synth` with the tiny random Qwen3 on a real vLLM server as the teacher: its outputs
are random but constrained to the candidate shape, so every candidate parses and either meets
the contract or is rejected with a counted reason; nothing kept leaks a test row."""

from __future__ import annotations

import asyncio
import json

import pytest

pytestmark = [pytest.mark.vllm]


def test_synth_with_the_tiny_model_as_teacher(vllm_server, contracts, tmp_path):
    from taskc.backends import get_backend
    from taskc.evaluate.validate import parse_output
    from taskc.distill.synth import synthesize, write_outputs

    contract = contracts("git_assistant")
    teacher = get_backend("openai", model=vllm_server.model, base_url=vllm_server.openai_url, mode="vllm")
    rows, report = asyncio.run(synthesize(contract, teacher, n=8, seed_examples=5, max_rounds=2, concurrency=8))
    assert report.requested >= 8
    assert report.kept + sum(report.rejected.values()) == report.requested
    assert "unparseable" not in report.rejected  # the candidate shape was enforced by the server
    assert "request failed" not in report.rejected
    test_questions = {contract.inputs_of("test", i)["question"].lower() for i in range(len(contract.splits["test"].rows))}
    for row in rows:
        assert row["question"].lower() not in test_questions
        text = contract.output.serialize(row["answer"])
        assert parse_output(contract.body["output"], contract.body["validate_schema"], text).valid
    report_path = write_outputs(rows, report, tmp_path / "synth.jsonl")
    assert json.loads(report_path.read_text())["kept"] == len(rows)
