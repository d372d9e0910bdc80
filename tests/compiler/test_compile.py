"""`taskc compile`: every spec example compiles unchanged, deterministically, with a stable id."""

import json
import os
import shutil
from pathlib import Path

import pytest

from taskc import __version__
from taskc.backends.templates import compiled_files as render_files
from taskc.compiler.build import compile_spec

GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = ["banking77", "git_assistant", "home_control", "pii_redaction", "text2sql", "hotpotqa"]
STRICT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf",
                   "description", "$ref", "$defs", "title", "$comment"}


from tests.support import taskc  # noqa: E402


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_spec_example_compiles_unchanged(examples_workspace, name):
    contract = compile_spec(examples_workspace / "specs" / f"{name}.yaml")
    files = render_files(contract)
    assert contract.name == name
    for rel, text in files.items():
        assert contract.id in text, f"{rel} does not name the contract id"
        assert __version__ in text, f"{rel} does not name the taskc version"
        assert "guided_" not in text
    body = json.loads(files["contract.json"])
    assert body["contract_id"] == contract.id and len(contract.id) == 64


def _walk(schema):
    yield schema
    for value in schema.values():
        if isinstance(value, dict):
            for sub in value.values() if value is schema.get("properties") or value is schema.get("$defs") else [value]:
                if isinstance(sub, dict):
                    yield from _walk(sub)
        elif isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    yield from _walk(sub)


@pytest.mark.parametrize("name", ["banking77", "git_assistant", "home_control", "pii_redaction"])
def test_strict_schema_is_in_the_strict_subset(examples_workspace, name):
    files = render_files(compile_spec(examples_workspace / "specs" / f"{name}.yaml"))
    schema = json.loads(files["schema.json"])
    for node in _walk(schema):
        assert set(node) <= STRICT_KEYWORDS, set(node) - STRICT_KEYWORDS
        if node.get("type") == "object" or "properties" in node:
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])


def test_optional_tool_parameters_are_nullable_in_the_strict_schema(examples_workspace):
    files = render_files(compile_spec(examples_workspace / "specs" / "home_control.yaml"))
    branches = json.loads(files["schema.json"])["properties"]["tool_call"]["anyOf"]
    lights = next(b for b in branches if b["properties"]["name"]["enum"] == ["toggle_lights"])
    params = lights["properties"]["parameters"]
    assert params["properties"]["room"]["type"] == ["string", "null"]
    assert None in params["properties"]["room"]["enum"]
    assert params["properties"]["state"] == {"type": "string", "enum": ["on", "off"]}
    validate = json.loads(files["schema.validate.json"])
    full = next(b for b in validate["anyOf"] if b["properties"]["name"]["const"] == "set_thermostat")
    assert full["properties"]["parameters"]["properties"]["mode"]["default"] == "auto"
    assert full["properties"]["parameters"]["properties"]["temperature"]["minimum"] == 60


def test_train_jsonl_assistant_turn_is_the_decoder_serialization(examples_workspace):
    contract = compile_spec(examples_workspace / "specs" / "git_assistant.yaml")
    lines = render_files(contract)["train.jsonl"].splitlines()
    assert len(lines) == 43
    first = json.loads(lines[0])
    roles = [m["role"] for m in first["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user", "assistant"]
    gold = first["messages"][-1]["content"]
    assert gold == json.dumps(json.loads(gold), separators=(",", ":"), ensure_ascii=False)
    # keys in the tool schema's order, whatever the order in the data file
    call = json.loads(gold)
    tool = next(t for t in contract.output.tools if t["name"] == call["name"])
    order = list(tool["parameters"]["properties"])
    assert list(call["parameters"]) == sorted(call["parameters"], key=order.index)
    assert first["metadata"] == {"taskc": __version__, "contract_id": contract.id}


def test_recompile_is_byte_identical_across_processes(examples_workspace):
    specs = [f"specs/{n}.yaml" for n in ("git_assistant", "home_control", "pii_redaction", "text2sql")]
    for out in ("a", "b"):
        proc = taskc("compile", *specs, "--out", out, cwd=examples_workspace)
        assert proc.returncode == 0, proc.stderr
    a, b = examples_workspace / "a", examples_workspace / "b"
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert len(files_a) >= 40
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_compile_check_detects_stale_output(examples_workspace):
    cwd = examples_workspace
    assert taskc("compile", "specs/home_control.yaml", cwd=cwd).returncode == 0
    check = taskc("compile", "--check", "specs/home_control.yaml", cwd=cwd)
    assert check.returncode == 0 and "up to date" in check.stdout
    spec = cwd / "specs" / "home_control.yaml"
    spec.write_text(spec.read_text().replace("on-device smart home controller", "smart home controller"))
    stale = taskc("compile", "--check", "specs/home_control.yaml", cwd=cwd)
    assert stale.returncode == 1
    assert "generated/home_control: stale" in stale.stdout and "contract.json" in stale.stdout
    assert taskc("compile", "specs/home_control.yaml", cwd=cwd).returncode == 0
    (cwd / "generated/home_control/prompts/user.j2").write_text("edited by hand")
    assert taskc("compile", "--check", "specs/home_control.yaml", cwd=cwd).returncode == 1


REFORMATTED = """\
# same task, other formatting, other key order, comments
taskc: 1
name: home_control
description: Control a smart home from a spoken command with one function call.
generation:
  max_tokens: 128
  temperature: 0
metric: tool_call_equivalence
data: {test: {file: home_control.jsonl, columns: {command: sentence}}}
prompt:
  user: '{{ command }}'
  system: "You are an on-device smart home controller.\\n{{ format_instructions }}\\n"
inputs: {command: {type: string}}
output:
  tools:
    - {name: toggle_lights, description: Turn lights on or off in a room.,
       required: [state],
       parameters: {room: {enum: [living_room, bedroom, kitchen, bathroom, office, hallway], type: string},
                    state: {enum: ["on", "off"], type: string}}}
    - name: set_thermostat
      description: Set the target temperature.
      parameters:
        temperature: {type: integer, minimum: 60, maximum: 80}
        mode: {type: string, enum: [heat, cool, auto], default: auto}
      required: [temperature]
    - name: intent_unclear
      description: Use when the command cannot be mapped to a tool.
      parameters:
        reason: {type: string, enum: [ambiguous, off_topic, incomplete]}
      required: [reason]
  kind: tool_call
"""


def test_contract_id_ignores_formatting_but_not_meaning(examples_workspace):
    specs = examples_workspace / "specs"
    original = compile_spec(specs / "home_control.yaml").id
    (specs / "reformatted.yaml").write_text(REFORMATTED)
    assert compile_spec(specs / "reformatted.yaml").id == original
    (specs / "changed.yaml").write_text(REFORMATTED.replace("max_tokens: 128", "max_tokens: 129"))
    assert compile_spec(specs / "changed.yaml").id != original
    (specs / "changed.yaml").write_text(REFORMATTED.replace("default: auto", "default: heat"))
    assert compile_spec(specs / "changed.yaml").id != original
    data = specs / "home_control.jsonl"
    data.write_text(data.read_text().replace("72 degrees", "73 degrees"))
    assert compile_spec(specs / "home_control.yaml").id != original


def test_contract_id_follows_the_content_of_referenced_files(examples_workspace, tmp_path):
    work = tmp_path / "copy"
    (work / "specs").mkdir(parents=True)
    shutil.copytree(examples_workspace / "examples" / "banking77", work / "examples" / "banking77")
    shutil.copyfile(examples_workspace / "specs" / "banking77.yaml", work / "specs" / "banking77.yaml")
    before = compile_spec(work / "specs" / "banking77.yaml").id
    labels_file = work / "examples" / "banking77" / "categories.json"
    labels = json.loads(labels_file.read_text())
    labels_file.write_text(json.dumps(labels, indent=4))  # same labels, other formatting
    assert compile_spec(work / "specs" / "banking77.yaml").id == before
    labels_file.write_text(json.dumps(labels + ["new_intent"]))
    assert compile_spec(work / "specs" / "banking77.yaml").id != before


def test_golden_home_control(examples_workspace):
    files = render_files(compile_spec(examples_workspace / "specs" / "home_control.yaml"))
    golden = GOLDEN / "home_control"
    if os.environ.get("TASKC_UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        for rel, text in files.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text, encoding="utf-8")
    expected = {p.relative_to(golden).as_posix(): p.read_text(encoding="utf-8") for p in golden.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(expected)
    for rel, text in files.items():
        assert text == expected[rel], f"{rel} differs from tests/compiler/golden (TASKC_UPDATE_GOLDEN=1 to accept)"
