"""`taskc train` as a user runs it: the output folder, the record, and every bad input refused
with one clear message, exit 2 and nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import taskc

pytestmark = pytest.mark.train


def stderr_of(proc) -> str:
    """Standard error without the leak report nanobind prints at interpreter exit once triton
    (imported by torch) is loaded: third-party noise after taskc's own message."""
    lines = proc.stderr.strip().splitlines()
    cut = next((i for i, line in enumerate(lines) if line.startswith("nanobind: leaked")), len(lines))
    return "\n".join(lines[:cut]).strip()


def _spec_with(spec: Path, old: str, new: str) -> Path:
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))
    return spec


def test_lora_training_writes_a_merged_model_the_adapter_and_the_record(tasks, student, tmp_path, quiet_env):
    spec = tasks("label")
    out = tmp_path / "student-out"
    proc = taskc("train", str(spec), "--student", str(student), "--out", str(out), "--max-steps", "3", "--lr", "1e-3",
                 "--lora-rank", "8", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tiny_labels: 3 steps in ") and proc.stdout.rstrip().endswith(f"-> {out}/")
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
            "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "taskc-train.json"} <= names
    assert (out / "tokenizer_config.json").read_bytes() == (student / "tokenizer_config.json").read_bytes()
    record = json.loads((out / "taskc-train.json").read_text())
    from taskc.compiler.build import compile_spec

    assert record["contract_id"] == compile_spec(spec).id and record["task"] == "tiny_labels"
    assert record["base_model"] == str(student.resolve()) and record["method"] == "lora"
    assert record["steps"] == 3 and record["data"]["rows"] == 30 and len(record["data"]["sha256"]) == 64
    assert record["settings"]["lora_rank"] == 8 and record["settings"]["target_modules"] == "all-linear"
    assert record["precision"] == "fp32" and record["device"] == "cpu" and record["adapter"] == "adapter"
    assert record["chat_template_kwargs"] == {"enable_thinking": False}
    assert record["final_loss"] > 0 and record["wall_s"] > 0 and len(record["loss_log"]) >= 1
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and not adapter.get("modules_to_save")
    assert {name.rsplit(".", 1)[-1] for name in adapter["target_modules"]} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}  # every linear layer of the blocks

    # the merged weights are the base plus the adapter, as PEFT computes them
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[151644, 872, 198, 6023, 151645, 198, 151644, 77091, 198]])
    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(student)), str(out / "adapter")).eval()
    base = AutoModelForCausalLM.from_pretrained(str(student)).eval()
    with torch.no_grad():
        a, b, c = (m(ids).logits[0, -1] for m in (merged, peft, base))
    assert torch.allclose(a, b, atol=1e-4) and not torch.allclose(a, c, atol=1e-4)

    from taskc.distill.lora import lora_server_flags

    assert lora_server_flags("tiny-labels", out) == ["--enable-lora", "--lora-modules",
                                                     f"tiny-labels={(out / 'adapter').resolve()}", "--max-lora-rank", "8"]


def test_a_model_trained_for_another_contract_is_refused_unless_allowed(tmp_path):
    from taskc.distill.student import student_contract_check
    from taskc.errors import TaskcError

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "taskc-train.json").write_text(json.dumps({"contract_id": "a" * 64, "task": "tiny_labels"}))
    assert student_contract_check(folder, "a" * 64) is None
    assert student_contract_check(tmp_path / "not-trained-by-taskc", "b" * 64) is None
    with pytest.raises(TaskcError) as err:
        student_contract_check(folder, "b" * 64)
    assert str(err.value) == (f"{folder} was trained for contract aaaaaaaaaaaa (task tiny_labels), not bbbbbbbbbbbb: "
                              "the spec, its prompts or its data changed since training; retrain, or pass "
                              "--allow-other-contract to evaluate it anyway")
    assert student_contract_check(folder, "b" * 64, allow_other=True) == (
        f"warning: {folder} was trained for contract aaaaaaaaaaaa (task tiny_labels), not bbbbbbbbbbbb; "
        "evaluating anyway (--allow-other-contract)")


def _bad_cases(tasks, student, tmp_path):
    """(name, argv, expected stderr) for each bad input."""
    cases = []
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 10}))
    label = tasks("label")
    cases.append(("not a causal LM", [str(label), "--student", str(bert)],
                  f"error: student {bert} is not a causal language model (BertModel); taskc trains models whose "
                  "architecture ends in ForCausalLM"))
    cases.append(("no student folder", [str(label), "--student", str(tmp_path / "nope")],
                  f"error: student {tmp_path / 'nope'} is not a folder (a local model folder with config.json is "
                  "needed; nothing is downloaded)"))
    (label.parent / "empty.jsonl").write_text("")
    empty = tmp_path / "empty-spec"
    empty.mkdir()
    (empty / "rows.jsonl").write_text((label.parent / "rows.jsonl").read_text())
    (empty / "none.jsonl").write_text("")
    spec = empty / "tiny_labels.yaml"
    spec.write_text(label.read_text().replace("train: {file: rows.jsonl}", "train: {file: none.jsonl}"))
    cases.append(("empty train split", [str(spec), "--student", str(student)],
                  "empty-spec/tiny_labels.yaml:14:17: error: empty-spec/none.jsonl has no rows: the train split needs "
                  "at least one\n1 error"))
    cases.append(("empty train file", [str(label), "--student", str(student), "--train", str(label.parent / "empty.jsonl")],
                  f"error: tiny_labels has no train rows ({label.parent / 'empty.jsonl'}): nothing to train on"))
    tool = tasks("tool")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"request": "note", "answer": {"name": "note", "parameters": {"to": "ben", "urgent": False, "text": "a<|im_end|>"}}}) + "\n")
    cases.append(("answer the grammar refuses", [str(tool), "--student", str(student), "--train", str(bad)],
                  "error: 1 of 1 train answers are refused by the compiled grammar (a constrained model could never "
                  'produce them):\n  train row 0: the grammar refuses the answer at character 64: …"ben","urgent":false,'
                  '"text":"a‸<|im_end|>"}} (token \'<|im_end|>\' refused)'))
    cases.append(("fp16 on a CPU", [str(label), "--student", str(student), "--precision", "fp16"],
                  "error: precision fp16 needs a CUDA GPU, and this machine has no GPU (use precision auto or fp32)"))
    gpu_spec = tmp_path / "gpu" / "tiny_labels.yaml"
    gpu_spec.parent.mkdir()
    (gpu_spec.parent / "rows.jsonl").write_text((label.parent / "rows.jsonl").read_text())
    gpu_spec.write_text(label.read_text() + "train:\n  method: full\n  precision: bf16\n")
    line = len(label.read_text().splitlines()) + 3
    cases.append(("bf16 in the spec on a CPU", [str(gpu_spec), "--student", str(student)],
                  f"gpu/tiny_labels.yaml:{line}:14: error: precision bf16 needs a CUDA GPU with bf16 support, and this machine "
                  "has no GPU (use precision auto or fp32)\n1 error"))
    typo = tmp_path / "typo" / "tiny_labels.yaml"
    typo.parent.mkdir()
    (typo.parent / "rows.jsonl").write_text((label.parent / "rows.jsonl").read_text())
    typo.write_text(label.read_text() + "train:\n  epoch: 3\n  lora_rank: 0\n")
    cases.append(("bad train section", [str(typo), "--student", str(student)],
                  f"typo/tiny_labels.yaml:{line - 1}:3: error: unknown field 'epoch' in train (did you mean 'epochs'?)\n"
                  f"typo/tiny_labels.yaml:{line}:14: error: 'lora_rank' should be greater than or equal to 1\n2 errors"))
    return cases


def test_bad_inputs_are_one_clear_error_and_nothing_is_written(tasks, student, tmp_path, chdir, quiet_env):
    """In-process (one import of torch for every case); the command line is the same app."""
    from typer.testing import CliRunner

    from taskc.cli import app

    runner = CliRunner()
    out = tmp_path / "out"
    for name, argv, expected in _bad_cases(tasks, student, tmp_path):
        result = runner.invoke(app, ["train", *argv, "--out", str(out)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.exception)
        assert (result.exit_code, result.stderr.strip()) == (2, expected), name
        assert "Traceback" not in result.stderr and not out.exists(), name
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], name


def test_an_output_folder_holding_other_files_is_refused_untouched(tasks, student, tmp_path, quiet_env):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    proc = taskc("train", str(tasks("label")), "--student", str(student), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert stderr_of(proc) == f"error: --out {out} is a folder that holds files not written by taskc train; choose another"
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


def test_a_killed_training_leaves_no_output_folder(tasks, student, tmp_path, quiet_env):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "taskc.cli", "train", str(tasks("label")), "--student", str(student),
                             "--out", str(out), "--max-steps", "100000", "--no-progress"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith(".killed.") for p in tmp_path.iterdir()):
                break  # the trainer is running: its temporary sibling exists
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(2.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert not out.exists()


@pytest.mark.vllm
def test_check_proves_every_prompt_equals_vllms_own_rendering(tasks, student, tmp_path, quiet_env):
    """`--check` against vLLM's renderer, with a template that has Qwen3's thinking switch (so a
    lost `enable_thinking: false` would show as a mismatch on every row)."""
    from tests.distill.test_parity import thinking_student

    folder = thinking_student(student, tmp_path / "thinking")
    proc = taskc("train", str(tasks("tool")), "--student", str(folder), "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == (
        "tiny_tools: 30/30 prompts identical to vLLM's renderer · 30/30 answers accepted by the grammar · "
        "answer mask non-empty on every row · end of turn '<|im_end|>'")
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["thinking", "tiny_tools"]
