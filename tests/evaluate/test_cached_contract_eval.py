"""`taskc eval` from a cached contract sends and scores exactly what it does after a fresh compile:
samples.jsonl and summary.json are the same but for timings and run ids (issue 20)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.fakes.provider_server import FakeProvider
from tests.support import REPO, taskc

TIMING = {"run_id", "started", "wall_s", "requests_per_s", "latency_ms"}


def responder(api, body):
    """Gold-looking answers for some rows, a wrong label, JSON-wrapped labels and junk for others."""
    text = body["messages"][-1]["content"]
    kind = sum(map(ord, text)) % 4
    return ["card_arrival", "DESC:def", '{"label": "NUM:date"}', "no idea"][kind]


@pytest.fixture(scope="module")
def fake():
    with FakeProvider(responder=responder) as server:
        yield server


def run(tmp_path: Path, name: str, env: dict[str, str], *args: str, fake=None) -> tuple[list[dict], dict, list[dict]]:
    out = tmp_path / name
    extra = ("--base-url", fake.openai_base_url) if fake is not None else ()
    if fake is not None:
        fake.reset()
    proc = taskc("eval", *args, *extra, "--no-progress", "--no-cache", "--out", str(out), cwd=tmp_path, env=env)
    bodies = [r.body for r in fake.requests] if fake is not None else []
    assert proc.returncode == 0, proc.stderr
    (folder,) = [p for p in out.glob("*/*") if p.is_dir()]
    samples = sorted((json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()),
                     key=lambda s: (s["index"], s["repeat"]))
    for sample in samples:
        sample.pop("latency_s")
    summary = {k: v for k, v in json.loads((folder / "summary.json").read_text()).items() if k not in TIMING}
    return samples, summary, sorted(bodies, key=lambda b: json.dumps(b, sort_keys=True))


def record_token(cache: Path) -> str:
    (record,) = [p for p in cache.glob("*.pickle") if not p.name.endswith(".train.pickle")]
    with open(record, "rb") as handle:
        return pickle.load(handle)["token"]


@pytest.mark.parametrize("name, args", [
    ("trec_fine", ("--backend", "openai", "--model", "m", "--limit", "40", "--repeats", "2")),  # few-shot, label pointer
    ("git_assistant", ("--backend", "baseline", "--limit", "40")),  # reads the train split
], ids=["openai", "baseline"])
def test_a_run_from_the_cached_contract_is_the_same_as_from_a_fresh_compile(tmp_path, name, args, fake):
    spec = str(REPO / "specs" / f"{name}.yaml")
    cache = tmp_path / "contracts"
    env = {"TASKC_CONTRACT_CACHE": str(cache)}
    server = fake if "openai" in args else None
    fresh = run(tmp_path, "fresh", env, spec, *args, fake=server)
    stored = record_token(cache)  # the first run compiled and stored the contract
    from_cache = run(tmp_path, "cached", env, spec, *args, fake=server)
    assert record_token(cache) == stored  # the second loaded it (a recompile writes a new record)
    uncached = run(tmp_path, "uncached", {"TASKC_CONTRACT_CACHE": "0"}, spec, *args, fake=server)
    samples, summary, bodies = fresh
    assert len(samples) == (80 if "openai" in args else 40) and summary["n"] == len(samples)
    if "openai" in args:
        assert len(bodies) == 80 and len(bodies[0]["messages"]) == 12  # system, 5 shots, the row
        assert {s["valid"] for s in samples} == {True, False}
    assert from_cache == fresh
    assert uncached == fresh


def test_a_run_from_the_cached_contract_notices_an_edited_data_file(tmp_path):
    project = tmp_path / "p"
    (project / "specs").mkdir(parents=True)
    spec = project / "specs" / "yn.yaml"
    spec.write_text("taskc: 1\nname: yn\ndescription: Yes or no.\ninputs:\n  q: string\n"
                    "output: {kind: label, labels: [up, down]}\nprompt: {system: 'Answer.', user: '{{ q }}'}\n"
                    "data:\n  test: {file: test.csv, columns: {answer: a}}\nmetric: exact_match\n")
    spec.with_name("test.csv").write_text("q,a\nnorth?,up\nsouth?,down\n")
    env = {"TASKC_CONTRACT_CACHE": str(tmp_path / "contracts")}
    first, _, _ = run(tmp_path, "one", env, str(spec), "--backend", "gold")
    spec.with_name("test.csv").write_text("q,a\nnorth?,down\nsouth?,down\nsky?,up\n")
    second, summary, _ = run(tmp_path, "two", env, str(spec), "--backend", "gold")
    assert [s["inputs"]["q"] for s in first] == ["north?", "south?"]
    assert [s["inputs"]["q"] for s in second] == ["north?", "south?", "sky?"] and summary["n"] == 3
    assert [s["raw"] for s in second] == ["down", "down", "up"]
