"""llm_judge end to end: the judge is a backend and model named in the spec, its calls go through
the runner (cache, retries), and its cost is reported apart from the model's."""

import json

from taskc.backends.config import ModelConfig
from taskc.compiler.build import compile_spec
from taskc.evaluate.run import EvalOptions, evaluate
from tests.fakes.provider_server import FakeProvider

SPEC = """\
taskc: 1
name: capitals
inputs: {{question: string}}
output: {{kind: text}}
prompt: {{user: "{{{{ question }}}}"}}
data:
  test: {{file: data.jsonl}}
metrics:
  - exact_match: {{normalize: squad}}
  - llm_judge:
      judge: {{backend: openai, model: judge-1, base_url: "{url}", price: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}}}
      rubric: Correct if it names the same city as the reference.
"""
ROWS = [{"question": "Capital of France?", "answer": "Paris"},
        {"question": "Capital of Italy?", "answer": "Rome"},
        {"question": "Capital of Spain?", "answer": "Madrid"}]
MODEL_ANSWERS = {"Capital of France?": "The city of Paris", "Capital of Italy?": "Rome", "Capital of Spain?": "Lisbon"}


def judge(api, body):
    text = body["messages"][-1]["content"]
    if "Capital of" in text and body["model"] == "judge-1":
        ok = ("Lisbon" not in text)
        return json.dumps({"verdict": "correct" if ok else "incorrect", "reason": "compared the cities"})
    return MODEL_ANSWERS.get(text, "?")


def test_judge_scores_samples_and_is_costed_apart(tmp_path):
    with FakeProvider(responder=judge) as fake:
        (tmp_path / "spec.yaml").write_text(SPEC.format(url=fake.openai_base_url))
        (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
        contract = compile_spec(tmp_path / "spec.yaml")
        assert contract.body["judge"]["schema"]["required"] == ["verdict", "reason"]
        config = ModelConfig(name="m", backend="openai", model="m", base_url=fake.openai_base_url)
        options = EvalOptions(out=tmp_path / "runs", progress=False)
        summary = evaluate(contract, config, options)
        judge_bodies = [r.body for r in fake.requests if r.body["model"] == "judge-1"]
        assert len(judge_bodies) == 3
        assert judge_bodies[0]["structured_outputs"]["json"]["properties"]["verdict"]["enum"] == ["correct", "incorrect"]
        assert "Correct if it names the same city as the reference." in json.dumps(judge_bodies[0]["messages"])
        sent = fake.count
        evaluate(contract, config, options)  # judge verdicts and answers come from the cache
        assert fake.count == sent
    assert summary["metrics"]["exact_match"]["mean"] == 1 / 3
    assert abs(summary["metrics"]["llm_judge"]["mean"] - 2 / 3) < 1e-9
    assert summary["judge"]["model"] == "judge-1" and summary["judge"]["tokens"]["input_tokens"] > 0
    assert summary["judge"]["cost"]["usd_total"] > 0
    assert summary["cost"]["usd_total"] is None  # no price for "m": the judge's cost is not folded in
