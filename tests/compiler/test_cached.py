"""The contract cache: a spec whose inputs are unchanged is loaded, not recompiled, and the loaded
contract is the one a fresh compile gives; any change to an input is a recompile."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from taskc.compiler import cached
from taskc.compiler.build import compile_spec
from taskc.compiler.cached import compile_cached, is_cached, record_key
from taskc.errors import SpecError
from tests.support import REPO, taskc

SPECS = REPO / "specs"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test has its own contract cache (taskc's other caches stay where they are)."""
    monkeypatch.setenv("TASKC_CONTRACT_CACHE", str(tmp_path / "contracts"))
    return tmp_path / "contracts"


def tiny_project(root: Path) -> Path:
    """specs/tiny.yaml with a label file and csv splits, in its own project folder."""
    (root / "specs").mkdir(parents=True)
    data = root / "data"
    data.mkdir()
    (data / "labels.json").write_text(json.dumps(["yes", "no", "maybe"]))
    (data / "test.csv").write_text("q,a\nis it?,yes\nis it not?,no\nwho knows?,maybe\n")
    (data / "train.csv").write_text("q,a\nreally?,yes\nnot really?,no\n")
    spec = root / "specs" / "tiny.yaml"
    spec.write_text(
        "taskc: 1\nname: tiny\ndescription: Answer yes, no or maybe.\n"
        "inputs:\n  q: string\n"
        "output:\n  kind: label\n  labels: {file: ../data/labels.json}\n"
        "prompt:\n  system: |\n    Answer the question.\n    {{ format_instructions }}\n  user: 'Q: {{ q }}'\n"
        "  few_shot: {count: 1, from: train}\n"
        "data:\n  test: {file: ../data/test.csv, columns: {answer: a}}\n"
        "  train: {file: ../data/train.csv, columns: {answer: a}}\n"
        "metric: exact_match\n")
    return spec


def same_contract(loaded, fresh) -> None:
    assert loaded.id == fresh.id and loaded.body == fresh.body
    assert loaded.requests(repeats=2) == fresh.requests(repeats=2)
    assert loaded.splits["test"] == fresh.splits["test"] and loaded.gold["test"] == fresh.gold["test"]
    assert set(loaded.splits) == set(fresh.splits)
    if "train" in fresh.splits:
        assert loaded.splits["train"] == fresh.splits["train"] and loaded.gold["train"] == fresh.gold["train"]
    assert loaded.databases == fresh.databases and dict(loaded.row_databases) == dict(fresh.row_databases)
    assert loaded.constraints == fresh.constraints and loaded.analysis == fresh.analysis
    assert loaded.output == fresh.output
    assert loaded.loaded.source.path == fresh.loaded.source.path


@pytest.mark.parametrize("name", ["banking77", "trec_fine", "git_assistant", "text2sql"])
def test_a_second_compile_loads_the_first(name):
    path = SPECS / f"{name}.yaml"
    first = compile_cached(path)
    second = compile_cached(path)
    assert not is_cached(first) and is_cached(second)
    same_contract(second, compile_spec(path))


def test_the_train_split_is_read_on_first_use_only(monkeypatch):
    path = SPECS / "banking77.yaml"
    compile_cached(path)
    reads = []
    real = pickle.load
    monkeypatch.setattr(cached.pickle, "load", lambda f: reads.append(f.name) or real(f))
    contract = compile_cached(path)
    assert is_cached(contract) and not any(r.endswith(".train.pickle") for r in reads)
    contract.requests()
    contract.gold_text("test", 5)
    assert "train" in contract.splits and not any(r.endswith(".train.pickle") for r in reads)
    assert len(contract.splits["train"].rows) == 10003
    assert sum(r.endswith(".train.pickle") for r in reads) == 1
    assert contract.gold["train"][0] == compile_spec(path).gold["train"][0]
    assert sum(r.endswith(".train.pickle") for r in reads) == 1


def test_a_lost_train_file_is_compiled_again(own_cache):
    path = SPECS / "trec_fine.yaml"
    compile_cached(path)
    (train,) = own_cache.glob("*.train.pickle")
    train.unlink()
    contract = compile_cached(path)
    assert is_cached(contract)
    assert contract.splits["train"] == compile_spec(path).splits["train"]


EDITS = {
    "spec": lambda root: (root / "specs" / "tiny.yaml").write_text(
        (root / "specs" / "tiny.yaml").read_text().replace("description: Answer yes, no or maybe.", "description: Say yes or no.")),
    "label file": lambda root: (root / "data" / "labels.json").write_text(json.dumps(["yes", "no", "maybe", "never"])),
    "test split": lambda root: (root / "data" / "test.csv").write_text("q,a\nis it?,no\nis it not?,no\nwho knows?,maybe\n"),
    "train split": lambda root: (root / "data" / "train.csv").write_text("q,a\nreally?,no\nnot really?,no\n"),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_input_is_compiled_again(tmp_path, what):
    spec = tiny_project(tmp_path / "p")
    before = compile_cached(spec)
    assert is_cached(compile_cached(spec))
    EDITS[what](tmp_path / "p")
    after = compile_cached(spec)
    assert not is_cached(after) and after.id != before.id
    same_contract(after, compile_spec(spec))
    assert is_cached(compile_cached(spec))


def test_a_touched_but_unchanged_file_still_hits(tmp_path):
    spec = tiny_project(tmp_path / "p")
    compile_cached(spec)
    for file in (spec, tmp_path / "p" / "data" / "test.csv"):
        os.utime(file, ns=(1, 1))
    assert is_cached(compile_cached(spec))


def test_a_symlinked_split_pointed_elsewhere_is_compiled_again(tmp_path):
    spec = tiny_project(tmp_path / "p")
    data = tmp_path / "p" / "data"
    shutil.copy(data / "test.csv", data / "a.csv")
    (data / "b.csv").write_text("q,a\nis it?,maybe\n")
    (data / "test.csv").unlink()
    (data / "test.csv").symlink_to("a.csv")
    first = compile_cached(spec)
    (data / "test.csv").unlink()
    (data / "test.csv").symlink_to("b.csv")
    second = compile_cached(spec)
    assert not is_cached(second) and len(second.splits["test"].rows) == 1 and second.id != first.id
    shutil.copy(data / "b.csv", data / "c.csv")  # the same bytes in another file: still a change of input
    (data / "test.csv").unlink()
    (data / "test.csv").symlink_to("c.csv")
    third = compile_cached(spec)
    assert not is_cached(third) and third.id == second.id
    assert is_cached(compile_cached(spec))


def test_another_taskc_build_or_working_directory_is_another_record(tmp_path, monkeypatch):
    spec = tiny_project(tmp_path / "p")
    compile_cached(spec)
    key = record_key(spec)
    monkeypatch.setattr(cached, "code_stamp", lambda: "another build")
    assert record_key(spec) != key and not is_cached(compile_cached(spec))
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path / "p")
    assert record_key(spec) != key


def test_the_build_stamp_follows_the_package_files(tmp_path):
    package = tmp_path / "pkg"
    (package / "compiler").mkdir(parents=True)
    source = package / "compiler" / "build.py"
    source.write_text("x = 1\n")
    (package / "__pycache__").mkdir()
    stamp = cached.package_stamp(package, "0.1.0")
    (package / "__pycache__" / "build.cpython-311.pyc").write_bytes(b"\0")
    assert cached.package_stamp(package, "0.1.0") == stamp
    assert cached.package_stamp(package, "0.2.0") != stamp
    os.utime(source, ns=(1, 2))
    touched = cached.package_stamp(package, "0.1.0")
    assert touched != stamp
    (package / "compiler" / "extra.py").write_text("")
    assert cached.package_stamp(package, "0.1.0") != touched


def test_a_bad_spec_is_never_cached_and_always_reported(tmp_path, own_cache):
    spec = tiny_project(tmp_path / "p")
    spec.write_text(spec.read_text().replace("metric: exact_match", "metric: no_such_metric"))
    for _ in range(2):
        with pytest.raises(SpecError) as err:
            compile_cached(spec)
        assert "unknown metric 'no_such_metric'" in str(err.value.diagnostics)
    assert not list(own_cache.glob("*.pickle"))


def test_a_damaged_record_is_a_miss_and_is_rewritten(tmp_path, own_cache):
    spec = tiny_project(tmp_path / "p")
    compile_cached(spec)
    (record,) = [p for p in own_cache.glob("*.pickle") if not p.name.endswith(".train.pickle")]
    record.write_bytes(record.read_bytes()[:200])
    again = compile_cached(spec)
    assert not is_cached(again)
    assert is_cached(compile_cached(spec))


def test_the_cache_can_be_turned_off(tmp_path, own_cache, monkeypatch):
    monkeypatch.setenv("TASKC_CONTRACT_CACHE", "0")
    spec = tiny_project(tmp_path / "p")
    assert not is_cached(compile_cached(spec)) and not is_cached(compile_cached(spec))
    assert not own_cache.exists()


def test_only_the_most_recently_used_records_are_kept(tmp_path, own_cache, monkeypatch):
    monkeypatch.setattr(cached, "MAX_RECORDS", 2)
    specs = [tiny_project(tmp_path / f"p{i}") for i in range(3)]
    for spec in specs:
        compile_cached(spec)
    records = [p for p in own_cache.glob("*.pickle") if not p.name.endswith(".train.pickle")]
    assert len(records) == 2 and len(list(own_cache.glob("*.train.pickle"))) == 2
    assert not is_cached(compile_cached(specs[0])) and is_cached(compile_cached(specs[2]))


def test_a_replaced_body_renders_afresh():
    from dataclasses import replace

    path = SPECS / "banking77.yaml"
    compile_cached(path)
    contract = compile_cached(path)
    prompt = {**contract.body["prompt"], "system": "Be brief.", "user": "Text: {{ text }}"}
    changed = replace(contract, body={**contract.body, "prompt": prompt})
    assert changed.messages("test", 0) == [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "Text: " + contract.inputs_of("test", 0)["text"]}]
    kept = replace(contract, splits={**contract.splits})
    assert kept.messages("test", 1) == contract.messages("test", 1)


def test_compiled_artifacts_are_the_same_from_the_cache(tmp_path, own_cache):
    env = {"TASKC_CONTRACT_CACHE": str(own_cache)}
    args = [str(SPECS / "trec_fine.yaml")]
    assert taskc("compile", *args, "--out", "g1", cwd=tmp_path, env=env).returncode == 0
    assert list(own_cache.glob("*.pickle"))
    assert taskc("compile", *args, "--out", "g2", cwd=tmp_path, env=env).returncode == 0
    first = {p.relative_to(tmp_path / "g1"): p.read_bytes() for p in (tmp_path / "g1").rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "g2"): p.read_bytes() for p in (tmp_path / "g2").rglob("*") if p.is_file()}
    assert first == second
    check = taskc("compile", "--check", *args, "--out", "g1", cwd=tmp_path, env=env)
    assert check.returncode == 0 and check.stdout.count("up to date") == 1, check.stdout
